#!/usr/bin/env python3
"""embed.py IN OUT NAME: write a C file defining `const char NAME[]` (the
bytes of IN, NUL-terminated) and `const size_t NAME_len` (without the NUL),
so that a file ships inside the binary with no build step beyond meson."""
import sys

src, out, name = sys.argv[1:4]
data = open(src, 'rb').read()
with open(out, 'w') as f:
    f.write('/* Generated from %s by scripts/embed.py; do not edit. */\n' %
            src.split('/')[-1])
    f.write('#include <stddef.h>\n')
    f.write('extern const char %s[];\nextern const size_t %s_len;\n' % (name, name))
    f.write('const char %s[] = {\n' % name)
    for i in range(0, len(data), 16):
        f.write('  ' + ', '.join("'\\x%02x'" % b for b in data[i:i + 16]) + ',\n')
    f.write("  '\\0'};\n")
    f.write('const size_t %s_len = %d;\n' % (name, len(data)))
