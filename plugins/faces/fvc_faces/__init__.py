"""fvc face crops: ``fvc prepare TABLE -o OUT --faces`` and the face detector plugins it takes by name."""
