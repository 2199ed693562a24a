"""The Textual app: the only package of tuimail that imports textual."""
