"""Service tickets: lifecycle, SLA clocks, the working-day calendar, appointments."""
