#!/bin/sh
# copy_if_missing.sh SRC DEST: copy SRC to DEST when SRC exists and DEST does not yet
# (the table hooks: the first of sketch, variant and menu scheme CSV wins).
[ -f "$2" ] || [ ! -f "$1" ] || cp "$1" "$2"
