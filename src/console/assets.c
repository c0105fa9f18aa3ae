/*
 * The console's static files, compiled into the binary: the assembler includes each file under
 * src/console/assets/ byte for byte (.incbin, paths relative to the repository root, where make
 * runs the compiler), NUL-terminated. The Makefile rebuilds this object when an asset changes.
 * No network access at run time: the pages reference nothing outside this table.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "console/console.h"

#define CONSOLE_ASSET(sym, file)                                                                   \
    __asm__(".section .rodata\n"                                                                   \
            ".balign 16\n"                                                                         \
            ".type " #sym ", @object\n" #sym ":\n"                                                 \
            ".incbin \"src/console/assets/" file "\"\n" #sym "_end:\n"                             \
            ".byte 0\n"                                                                            \
            ".previous\n");                                                                        \
    extern const unsigned char sym[], sym##_end[]

CONSOLE_ASSET(console_asset_index_html, "index.html");
CONSOLE_ASSET(console_asset_app_js, "app.js");
CONSOLE_ASSET(console_asset_style_css, "style.css");

/* Lengths come from the end labels, which are not constant expressions: the table is built
 * on the stack per lookup (three entries) instead of as mutable static state. */
bool console_asset_find(const char *path, struct console_asset *out)
{
    const struct console_asset table[] = {
        {"/index.html", "text/html; charset=utf-8", console_asset_index_html,
         (size_t)(console_asset_index_html_end - console_asset_index_html)},
        {"/assets/app.js", "text/javascript; charset=utf-8", console_asset_app_js,
         (size_t)(console_asset_app_js_end - console_asset_app_js)},
        {"/assets/style.css", "text/css; charset=utf-8", console_asset_style_css,
         (size_t)(console_asset_style_css_end - console_asset_style_css)},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(table[i].path, path) == 0) {
            *out = table[i];
            return true;
        }
    }
    return false;
}
