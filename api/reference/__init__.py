"""Reference data: localities, parameters, programs and rules (plain types, no HTTP)."""
