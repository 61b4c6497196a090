#!/bin/sh
# copy_if_present.sh SRC DEST: copy SRC over DEST when SRC exists (the sketch's own table
# hook: it replaces an older copy, and leaves one in place when the sketch has none).
[ ! -f "$1" ] || cp -f "$1" "$2"
