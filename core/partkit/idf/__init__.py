"""ESP-IDF projects: a finished build directory read as partkit's inputs, and its checks."""
