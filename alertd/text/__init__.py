"""Text: HTML to plain text, normalisation shared by training and scoring, language id."""
