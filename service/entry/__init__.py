"""Entry points: the command line, the composition root that reads the settings and wires
adapters into the loop, the settings themselves, and the redrive command.
"""
