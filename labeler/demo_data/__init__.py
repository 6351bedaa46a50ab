"""Real labelled images shipped for ``labeler demo`` (Fashion-MNIST, MIT licence)."""
