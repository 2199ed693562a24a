"""The apps the launch benchmark starts beside tuimail, each a module that runs on its own."""
