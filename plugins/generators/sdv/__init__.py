"""SDV's single-table synthesizers (tvae, ctgan, gaussian-copula), with the workarounds a 1,000-column table needs."""
