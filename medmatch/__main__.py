from medmatch.cli import app

app(prog_name="medmatch")
