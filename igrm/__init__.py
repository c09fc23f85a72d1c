"""igrm: implicit regularisation of heavy-ball momentum, reproduced end to end."""

__version__ = "0.1.0"
