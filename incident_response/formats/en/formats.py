"""Dates as the app shows them ("2026-12-01 05:10 UTC"), in the admin too.

Django's own English formats ("Dec. 1, 2026, 5:10 a.m.") would make the admin
and the incident pages disagree on how the same moment reads.
"""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
