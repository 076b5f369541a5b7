"""Workers: claim queued runs, run their sessions, report back."""
