"""The commented sample config that `rostersync init` writes."""

SAMPLE_CONFIG = '''\
# rostersync configuration. Paths are relative to this file.
# Secrets never go here: name the environment variable that holds them.

[database]
path = "rostersync.db"
# url = "postgresql://rostersync@db.example:5432/rostersync"   # PostgreSQL instead of
#                                 # the file at path (docs/deploy.md); no password here:
# password_env = "ROSTERSYNC_DB_PASSWORD"   # the variable holding it (else PGPASSWORD)
# The audit log is keyed (HMAC) with rostersync.auditkey beside this file (0600, written by
# `rostersync init`), or with $ROSTERSYNC_AUDIT_KEY. Keep the key, never in the database's
# backups; `rostersync audit verify` needs it (docs/reliability.md).

[hris]
type = "csv"                      # the HR export rostersync reads
path = "hr/employees.csv"         # the full export (a file drop)
# delta_path = "hr/changes.csv"   # optional: a file of only changed rows, for --delta
encoding = "utf-8-sig"            # UTF-8 with or without a byte-order mark
delimiter = ","
# Tried in order; put the one your export uses first. %m/%d/%Y and %d/%m/%Y are
# ambiguous, so never list both.
date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]
# Every header named below must be in the export, or the feed is rejected (exit 4) naming
# the column: a renamed column would otherwise read as empty for everyone. List here the
# headers the export may lack (they then read as empty); never a required one.
optional_columns = []             # e.g. ["Time Zone", "Preferred Name"]

[hris.columns]                    # canonical field = "CSV header"
employee_id = "Employee ID"       # required: the immutable HR key
employee_number = "Employee Number"
first_name = "First Name"         # required
last_name = "Last Name"           # required
preferred_name = "Preferred Name"
email = "Work Email"
department = "Department"
job_title = "Job Title"
location = "Location"
manager_id = "Manager ID"         # the manager's employee_id
status = "Status"                 # required; mapped by [mapping.status_values]
hire_date = "Hire Date"
termination_date = "Termination Date"   # the last working day; may be in the future
timezone = "Time Zone"            # IANA name, e.g. Europe/Berlin

[hris.attributes]                 # extra columns kept for scoping rules
worker_type = "Worker Type"

[lms]
type = "scim"
base_url = "https://lms.example.com/scim/v2"
token_env = "ROSTERSYNC_LMS_TOKEN"   # export ROSTERSYNC_LMS_TOKEN=...
page_size = 200
max_pages = 100000                # a listing that goes on past this is refused, not followed
concurrency = 8
timeout_seconds = 30              # per read: a byte at a time would never trip it, so...
request_deadline_seconds = 300    # ...each request also ends after this long in all
max_answer_bytes = 134217728      # 128 MiB: a larger answer is refused, not held in memory
verify_tls = true                 # only turn off for a test endpoint you control
allow_insecure_http = false       # plain http:// is refused beyond loopback unless true
                                  # (the token would travel in clear; doctor flags it)
use_etags = true
bulk = "auto"                     # SCIM Bulk where /ServiceProviderConfig offers it;
                                  # "off": one request per operation
# bulk_fail_on_errors = 10        # failOnErrors sent with each bulk request (default: none,
                                  # every operation runs and answers for itself)
deactivate_by = "active_false"    # or "delete" for targets that cannot deactivate
profile = "generic"               # generic | absorb | 360learning | linkedin_learning |
                                  # talentlms: where SCIM LMSs differ (docs/connectors.md)
# immutable_fields = ["user_name"]  # set once at create, never written after (default:
                                    # the profile's)

[mapping]
# The login: email | employee_id | employee_number (that field, else the employee id), or
# an expression, or a list of candidate expressions tried in order until one is free
# (a generated login: set at creation and never regenerated), e.g.
# user_name = ['left(normalize_diacritics(first_name), 1) + normalize_diacritics(last_name)',
#              'normalize_diacritics(first_name) + "." + normalize_diacritics(last_name)']
user_name = "email"
lowercase_user_name = true
default_timezone = "UTC"           # IANA name, checked when the config is loaded
# A longer value, or one holding a control character (NUL, ESC, ...) or a bidirectional
# override, is `invalid` drift naming the field, and nothing is sent for that person.
max_name_length = 256             # first, last and preferred name
max_field_length = 1024           # every other field
# Unknown values of these fields become `unmapped` drift, never guesses. The person's
# account is still created and kept up to date; only that field is left alone in the LMS
# until a value mapping (or HR's fix) exists.
strict = ["department"]

[mapping.status_values]           # HR status (any case) -> active | leave | pre_hire | terminated
"Active" = "active"
"Leave of Absence" = "leave"
"Pre-Hire" = "pre_hire"
"Terminated" = "terminated"

[mapping.values.department]       # HR department -> LMS department (the lookup table
"Sales" = "Sales"                 # "department" of the expressions below)
"Engineering" = "Engineering"
"Finance" = "Finance"

# [mapping.tables.countries]      # more lookup tables: lookup("countries", location)
# "Berlin" = "DE"

# LMS attribute = expression (docs/mapping.md). These are the defaults: leave them out or
# change them. A table form sets when it is written: { expr = "...", apply = "create" }
# with apply = always | create (never compared after) | when_empty (LMS admins may edit
# it) | never (unmanaged). A SCIM target takes core, enterprise and custom extension
# attributes by their SCIM names; `rostersync doctor` checks them against its /Schemas.
# A Canvas target takes time_zone, locale and authentication_provider_id (docs/canvas.md).
[mapping.attributes]
given_name = "coalesce(preferred_name, first_name)"
family_name = "last_name"
display_name = 'join(" ", coalesce(preferred_name, first_name), last_name)'
email = "email"
title = "job_title"
department = 'lookup_strict("department", department)'
employee_number = "employee_number"
# "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter" = "cost_center"

[scope]
# include = { "location" = ["Berlin", "Paris"] }  # only these people get accounts
exclude = { "attributes.worker_type" = ["Contractor"] }
skip_create_statuses = ["pre_hire", "terminated"]

[guards]
feed_max_drop_percent = 10        # reject a feed whose record count drops more than this
feed_max_active_drop_percent = 30 # ... or whose active people drop more than this
feed_max_null_rate_increase = 0.10
mass_deactivation_min = 25        # hold deactivations above max(this, percent of active)
mass_deactivation_percent = 2
mass_window_minutes = 60          # ... counted over every run (batch, resync, real-time)
                                  # in this sliding window; 0 counts each run alone
mass_identity_change_min = 25     # hold login/email changes in one run above
mass_identity_change_percent = 5  # max(this min, this percent of active accounts)
mass_attribute_change_min = 100   # hold updates rewriting one attribute in one run above
mass_attribute_change_percent = 10  # max(this min, this percent of active accounts)
vanished_grace_hours = 24         # someone missing from the feed waits this long
vanished_grace_pulls = 0          # and, if > 0, this many consecutive full pulls
termination_cutoff = "end_of_day" # access ends when the day after the last day begins
termination_sla_minutes = 60
leave_policy = "keep"             # keep | suspend
orphan_policy = "report"          # LMS accounts with keys HR never sent: report | deactivate
breaker_min_ops = 20
breaker_failure_rate = 0.40
retry_max_attempts = 6
retry_base_seconds = 30
retry_max_seconds = 3600
inline_retry_max_seconds = 5      # a throttled write waits in place at most this long
lease_seconds = 120               # one writer at a time: the lease a run renews
audience_mass_removal_min = 10    # hold removals from one audience in one run above
audience_mass_removal_percent = 10  # max(this min, this percent of its members)

[schedule]
delta_every_minutes = 15
full_cron = "0 2 * * *"           # crontab fields: minute hour day month weekday
# full_every_minutes = 60         # instead of full_cron: a full reconcile this often
retry_every_minutes = 5
timezone = "UTC"                  # IANA name; the cron runs in this zone

[thresholds]
hris_stale_warning_hours = 26
hris_stale_critical_hours = 50
lms_stale_warning_hours = 26
lms_stale_critical_hours = 50
failed_ops_warning = 1            # WARNING from this many failed operations
dead_ops_critical = 1             # CRITICAL from this many dead ones (retries exhausted)

[realtime]                        # HR webhooks -> per-person syncs (docs/cli.md)
enabled = false
listen = "127.0.0.1:8787"         # loopback; put a TLS proxy in front for the HRIS
mode = "hybrid"                   # batch | realtime | hybrid
realtime_kinds = ["create", "deactivate", "reactivate", "delete"]  # hybrid: the rest waits
buffer_seconds = 0                # hold events this long so bursts coalesce
# bamboohr_secret_env = "ROSTERSYNC_BAMBOOHR_WEBHOOK_KEY"  # the webhook's privateKey
# generic_secret_env = "ROSTERSYNC_EVENT_KEY"              # key of the generic signed event
max_skew_seconds = 300            # older (or newer) signed requests are refused
keep_events_days = 7              # received events are kept this long for `events list`
max_connections = 64              # served at once; one more gets 503 (at most ulimit -n / 2)
# mass_window_minutes = 60        # the old name of [guards] mass_window_minutes: set that

[metrics]                         # Prometheus: GET /metrics, and/or a textfile
enabled = false
listen = "127.0.0.1:9464"
# textfile = "/var/lib/node_exporter/textfile/rostersync.prom"  # relative: beside this file
textfile_every_seconds = 60       # how often the textfile is rewritten

[alerts]                          # one notice per state change, one on recovery
check_every_seconds = 30
stale_from = "critical"           # warning | critical
# [[alerts.channels]]
# type = "webhook"                # JSON with "text": Slack-compatible
# url_env = "ROSTERSYNC_ALERT_WEBHOOK"
# [[alerts.channels]]
# type = "command"                # the notice as JSON on stdin
# command = ["/usr/local/bin/page-oncall"]
# pass_env = ["HTTPS_PROXY"]       # it sees PATH, HOME, LANG, TZ and these, not our secrets

[ha]                              # several `serve` nodes on one database (docs/ha.md)
enabled = false                   # true: nodes campaign for the leader lease; one applies
# node = "sync-a"                 # this node's name in status and logs (default: host name)
lease_seconds = 30                # at most 60: a standby takes over after this long

# Audiences: LMS groups (SCIM Groups, Moodle cohorts, Canvas groups) kept in step with HR
# by rules (docs/audiences.md). One [[audiences]] table per audience.
# [[audiences]]
# id = "sales-onboarding"         # rostersync's name: letters, digits, - _ .
# name = "Sales onboarding"       # shown to people; the SCIM Group's displayName
# description = "New sales staff, first 90 days"
# rule = 'department == "Sales" and hire_date within 90 days'
# rules = []                      # or several rules: a member when any holds
# lms_group = "sales-onboarding"  # the group's name in the LMS (default: the id)
# create_missing = true           # create the group when the LMS lacks it
# compliance = false              # removals wait for additions (docs/audiences.md)
# known_values = { "department" = ["Support"] }  # other values: `unmapped` drift
# mass_removal_min = 10           # hold removals above max(min, percent of members)
# mass_removal_percent = 10       # (default: the [guards] audience_ values)
# stray_members = "report"        # report | remove: members no person is linked to

[retention]                       # days of history kept; unset keeps it forever
# runs_days = 400                 # runs and superseded feed snapshots
# attempts_days = 90              # the per-attempt log of operations
# ops_days = 400                  # finished operations: the terminations evidence
# resolved_drift_days = 400       # drift resolved this long ago (open drift stays)
# audit_days = 2555               # audit entries (a checkpoint keeps the chain whole)

# The console's keys (docs/console.md): action name = key, as the help screen (?) lists
# them. Checked when the config is loaded: an unknown action, a key a terminal cannot
# send, or two actions on one key on the same screen is one sentence naming the key.
# [console.keys]
# retry = "R"                     # a character, a key name ("f5"), or "ctrl+r"
# help = "f1,?"                   # several keys: comma separated
'''
