"""``python -m greenbutton`` is the ``greenbutton`` command."""

from greenbutton.cli import main

main()
