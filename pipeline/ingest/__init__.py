"""Import pairs and labels from files into the label database (one file, one transaction)."""
