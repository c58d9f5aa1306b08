"""fvc-ray: run the folds of an fvc run as Ray tasks."""
