"""Data quality: the Great Expectations suite built from the engagement file (quarantine or warn), and the
rates of nulls, out-of-range, unseen and stuck values tested night after night (ADR 0027)."""
