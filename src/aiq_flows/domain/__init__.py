"""Pure business rules: money, references, codes, validation of incoming sales, outcomes.
No I/O, no Prefect, no zeep."""
