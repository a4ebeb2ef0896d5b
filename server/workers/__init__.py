"""Workers: the dramatiq broker, the actor that executes rule runs, and the scheduler."""
