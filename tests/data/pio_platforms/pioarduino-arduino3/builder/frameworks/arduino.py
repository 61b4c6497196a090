"""Arduino framework entry of the fixture: runs the framework's own build script, as
pioarduino's builder/frameworks/arduino.py does (inside env.BuildProgram())."""

from os.path import join

from SCons.Script import DefaultEnvironment, SConscript

env = DefaultEnvironment()
SConscript(join(env.PioPlatform().get_dir(), "framework-arduinoespressif32", "tools",
                "pioarduino-build.py"))
