"""Audiences: LMS groups and cohorts whose membership follows rules on HR fields."""
