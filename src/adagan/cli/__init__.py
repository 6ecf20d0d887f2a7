"""Command-line interface: one thin module per subcommand (see main.py)."""

# click context settings shared by the subcommands: -h as well as --help, help text up to 110 columns.
CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
