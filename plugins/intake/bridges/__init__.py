"""Intake's bridges: modules registered only when another plugin is enabled too (manifest ``extras``).

- :mod:`plugins.intake.bridges.kpi`: intake's indicators for the kpi plugin.
"""
