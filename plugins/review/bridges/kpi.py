"""Review's indicators for the kpi plugin (helper "api"); loaded only when kpi is enabled."""
