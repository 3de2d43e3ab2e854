import os


def list_python_files(folder):
    """Return the paths of the Python files in folder."""
    paths = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            
    return paths
