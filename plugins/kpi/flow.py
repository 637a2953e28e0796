"""The kpi plugin's definitions: permissions, roles and settings.

kpi adds no workflow step: it measures the steps the other plugins run. Its people are
the managers reading dashboards and reports, customer service recording complaints and
follow-up visits (KP-6), and the process supervisor checking samples (KP-5).
"""

from __future__ import annotations

from core.contrib import Permission, RoleDefinition, Setting
from core.labels import N_

DASHBOARD_READ = "kpi.dashboard.read"
TARGETS_MANAGE = "kpi.targets.manage"
RULES_MANAGE = "kpi.rules.manage"
EVALUATION_READ = "kpi.evaluation.read"
FEEDBACK_READ = "kpi.feedback.read"
FEEDBACK_MANAGE = "kpi.feedback.manage"
SUPERVISION_READ = "kpi.supervision.read"
SUPERVISION_MANAGE = "kpi.supervision.manage"
REPORTS_READ = "kpi.reports.read"

#: Customer service (客服): complaints, follow-up visits, surveys.
CUSTOMER_SERVICE = "customer_service"
#: The process supervisor (稽核): monthly samples and findings (KP-5).
SUPERVISOR = "supervisor"

_MANAGERS = ("general_manager", "sales_manager", "finance", "auditor", SUPERVISOR)
_READERS = (*_MANAGERS, "sales", "order_clerk", "warehouse", CUSTOMER_SERVICE)

PERMISSIONS = (
    Permission(DASHBOARD_READ, N_("Read the KPI dashboard (within one's data scope)"), _READERS),
    Permission(TARGETS_MANAGE, N_("Set KPI targets"), ("general_manager",)),
    Permission(RULES_MANAGE, N_("Manage reward and alert rules"), ("general_manager",)),
    Permission(EVALUATION_READ, N_("Read the monthly evaluation (rule results)"), _MANAGERS),
    Permission(
        FEEDBACK_READ, N_("Read surveys, complaints and follow-up visits"), (*_MANAGERS, "sales", CUSTOMER_SERVICE)
    ),
    Permission(
        FEEDBACK_MANAGE,
        N_("Record complaints and follow-up visits, send surveys"),
        ("sales_manager", "sales", CUSTOMER_SERVICE),
    ),
    Permission(
        SUPERVISION_READ, N_("Read supervision samples and findings"), ("general_manager", "auditor", SUPERVISOR)
    ),
    Permission(SUPERVISION_MANAGE, N_("Draw samples, check orders, record and close findings"), (SUPERVISOR,)),
    Permission(REPORTS_READ, N_("Read the daily and monthly KPI reports"), _MANAGERS),
)

ROLES = (
    RoleDefinition(CUSTOMER_SERVICE, N_("Customer service"), "all", ("orders.read", "customers.read")),
    RoleDefinition(SUPERVISOR, N_("Process supervisor"), "all", ("orders.read", "customers.read", "audit.read")),
)

#: Settings keys.
AMBER_BAND = "kpi.dashboard.amber_band"
DAILY_REPORT_ROLES = "kpi.daily_report.roles"
MONTHLY_REPORT_ROLES = "kpi.monthly_report.roles"
SURVEY_TRIGGER = "kpi.surveys.trigger"
SURVEY_QUESTIONS = "kpi.surveys.questions"
SURVEY_VALID_DAYS = "kpi.surveys.valid_days"
QUARTERLY_ACTIVE_DAYS = "kpi.surveys.quarterly_active_days"
COMPLAINT_DAYS = "kpi.complaints.due_days"
SAMPLE_SIZE = "kpi.supervision.sample_size"
FINDING_DAYS = "kpi.supervision.correction_days"
ROLLUP_MAX_AGE = "kpi.dashboard.rollup_max_age"

SETTINGS = (
    Setting(
        AMBER_BAND,
        float,
        5.0,
        N_("KPI: amber band (percent of the target)"),
        N_("A value that misses its target by at most this share of the target is amber; further off, red."),
        minimum=0,
        maximum=100,
    ),
    Setting(
        ROLLUP_MAX_AGE,
        int,
        30,
        N_("KPI: minutes the dashboard may show rolled-up figures"),
        N_(
            "The dashboard reads the figures the rollup job computes (every 10 minutes for the current periods, "
            "nightly for past ones) while they are at most this old; past periods may be a day older. "
            "0 always computes live."
        ),
        minimum=0,
        maximum=1440,
    ),
    Setting(
        DAILY_REPORT_ROLES,
        str,
        "general_manager,vice_president,sales_manager",
        N_("KPI: roles receiving the daily order detail report"),
        N_("Role codes, comma-separated; the report goes out at 09:30 on working days (KP-4)."),
    ),
    Setting(
        MONTHLY_REPORT_ROLES,
        str,
        "general_manager,vice_president",
        N_("KPI: roles receiving the monthly KPI report"),
        N_("Role codes, comma-separated; sent on the first working day of the month."),
    ),
    Setting(
        SURVEY_TRIGGER,
        str,
        "delivery",
        N_("KPI: when to send the satisfaction survey of an order"),
        N_(
            "After delivery (the customer confirmed receipt; completion when logistics is off), "
            "after completion, or never."
        ),
        choices=("delivery", "completion", "off"),
    ),
    Setting(
        SURVEY_QUESTIONS,
        str,
        "quality,delivery,service,value",
        N_("KPI: survey questions"),
        N_("Question codes, comma-separated, each scored 1–5: quality, delivery, service, value, communication."),
    ),
    Setting(
        SURVEY_VALID_DAYS,
        int,
        30,
        N_("KPI: days a survey link stays valid"),
        minimum=1,
        maximum=365,
    ),
    Setting(
        QUARTERLY_ACTIVE_DAYS,
        int,
        365,
        N_("KPI: customers with an order within this many days get the quarterly survey"),
        minimum=1,
        maximum=3650,
    ),
    Setting(
        COMPLAINT_DAYS,
        int,
        3,
        N_("KPI: working days to resolve a complaint"),
        N_("The due date proposed when a complaint is recorded."),
        minimum=1,
        maximum=60,
    ),
    Setting(
        SAMPLE_SIZE,
        int,
        10,
        N_("KPI: orders sampled each month for supervision"),
        N_("Drawn at random from the previous month's orders on the first day of the month (KP-5)."),
        minimum=1,
        maximum=500,
    ),
    Setting(
        FINDING_DAYS,
        int,
        10,
        N_("KPI: working days to correct a supervision finding"),
        minimum=1,
        maximum=120,
    ),
)
