"""fvc-report: `fvc report` (a run's results as one self-contained HTML file) and `fvc explain`."""
