"""Carbon emissions per activity row (seed 000): factors, units, calculation."""
