"""Service integration: systemd notifications, watchdog, signals and journald logging."""
