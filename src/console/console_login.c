/*
 * Signing in and out of the console when security is on (console.h): the login form, POST
 * /login (user and password checked by the owner, then a session cookie), POST /logout (with
 * the session's CSRF token). The form is plain HTML rendered here, no script, so it works
 * before any page script is allowed to run.
 *
 * Bad input answers 4xx with the form or a JSON error, never 500: a body over
 * CONSOLE_BODY_MAX is 413, a missing or undecodable field 400, a form posted from another
 * origin 403, too many failures from one address 429 with Retry-After (console_session.h).
 * Every failed login is logged with the user name and the address. HTTP thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "base/dynlib.h"
#include "console/console_internal.h"

#define CONSOLE_PASSWORD_MAX 1024
#define CONSOLE_NEXT_MAX 512

/* Escapes text for HTML element content and attribute values. */
static void console_html(struct expo *e, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            expo_printf(e, "&amp;");
            break;
        case '<':
            expo_printf(e, "&lt;");
            break;
        case '>':
            expo_printf(e, "&gt;");
            break;
        case '"':
            expo_printf(e, "&quot;");
            break;
        case '\'':
            expo_printf(e, "&#39;");
            break;
        default:
            expo_printf(e, "%c", *s);
        }
    }
}

static int console_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The value of field `name` of an application/x-www-form-urlencoded body, decoded ('+' is a
 * space, %XX a byte) into out. Returns 0, -1 when absent, -2 when it does not fit in cap or
 * decodes to a control character (NUL included).
 */
static int console_form_value(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=')
            continue;
        size_t k = 0;
        for (const char *v = p + nl + 1; *v && *v != '&'; v++) {
            int ch = (unsigned char)*v;
            if (ch == '+') {
                ch = ' ';
            } else if (ch == '%') {
                int hi = console_hexval(v[1]), lo = hi < 0 ? -1 : console_hexval(v[2]);
                if (lo < 0)
                    return -2;
                ch = hi << 4 | lo;
                v += 2;
            }
            if (ch < 0x20 || ch == 0x7f || k + 1 >= cap)
                return -2;
            out[k++] = (char)ch;
        }
        out[k] = '\0';
        return 0;
    }
    return -1;
}

/* Where a login may send the browser: a path on this server, never another site. */
static bool console_next_ok(const char *next)
{
    return next[0] == '/' && next[1] != '/' && next[1] != '\\' && strpbrk(next, "\\\"'<>") == NULL;
}

static enum MHD_Result console_login_render(struct console *con, struct MHD_Connection *c,
                                            unsigned status, const char *msg, const char *next,
                                            const char *hname, const char *hvalue)
{
    struct expo e;
    expo_init(&e);
    expo_printf(&e, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>Sign in · Gregor console</title>\n"
                    "<link rel=\"stylesheet\" href=\"/assets/style.css\">\n</head>\n<body>\n"
                    "<header><p class=\"brand\">Gregor</p></header>\n"
                    "<main id=\"main\" class=\"login\">\n<h1>Sign in</h1>\n"
                    "<p>Security is on for this broker: sign in as one of its SASL users (PLAIN "
                    "or SCRAM). You see and change what the broker's ACLs allow "
                    "<code>User:</code><i>name</i> on the Kafka API.</p>\n");
    if (msg != NULL) { /* an answer of 200 carries news (signed out), any other an error */
        expo_printf(&e, status == MHD_HTTP_OK ? "<p id=\"notice\" role=\"status\">"
                                              : "<div id=\"error\" role=\"alert\">");
        console_html(&e, msg);
        expo_printf(&e, status == MHD_HTTP_OK ? "</p>\n" : "</div>\n");
    }
    expo_printf(&e,
                "<form id=\"login-form\" class=\"login\" method=\"post\" action=\"/login\">\n"
                "<label for=\"user\">User name</label>\n"
                "<input id=\"user\" name=\"user\" autocomplete=\"username\" required "
                "maxlength=\"%d\" autofocus>\n"
                "<label for=\"password\">Password</label>\n"
                "<input id=\"password\" name=\"password\" type=\"password\" "
                "autocomplete=\"current-password\" required>\n"
                "<input type=\"hidden\" name=\"next\" value=\"",
                CONSOLE_USER_MAX);
    console_html(&e, next != NULL && console_next_ok(next) ? next : "/");
    expo_printf(&e, "\">\n<button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form>\n"
                    "</main>\n</body>\n</html>\n");
    return console_send_expo(c, status, &e, "text/html; charset=utf-8", hname, hvalue);
}

enum MHD_Result console_login_form(struct console *con, struct MHD_Connection *c, unsigned status,
                                   const char *msg, const char *next)
{
    return console_login_render(con, c, status, msg, next, NULL, NULL);
}

/* A user name: printable, no spaces around it, at most CONSOLE_USER_MAX bytes. */
static bool console_user_ok(const char *user)
{
    size_t n = strlen(user);
    return n >= 1 && n <= CONSOLE_USER_MAX && user[0] != ' ' && user[n - 1] != ' ';
}

enum MHD_Result console_login_post(struct console *con, struct MHD_Connection *c,
                                   const struct console_body *body)
{
    if (!console_same_origin(c))
        return console_login_form(con, c, MHD_HTTP_FORBIDDEN,
                                  "The login form must be sent from this console's own page.", "/");
    if (body->overflow)
        return console_login_form(con, c, MHD_HTTP_CONTENT_TOO_LARGE,
                                  "The login form was too large.", "/");
    char user[CONSOLE_USER_MAX + 1], pass[CONSOLE_PASSWORD_MAX], next[CONSOLE_NEXT_MAX];
    int ru = console_form_value(body->data, "user", user, sizeof(user));
    int rp = console_form_value(body->data, "password", pass, sizeof(pass));
    if (console_form_value(body->data, "next", next, sizeof(next)) != 0 || !console_next_ok(next))
        snprintf(next, sizeof(next), "/");
    if (ru != 0 || rp != 0 || !console_user_ok(user) || pass[0] == '\0') {
        explicit_bzero(pass, sizeof(pass));
        return console_login_form(con, c, MHD_HTTP_BAD_REQUEST,
                                  "Give a user name (1 to 255 printable characters) and a "
                                  "password.",
                                  next);
    }
    char addr[64];
    console_client_addr(c, addr, sizeof(addr));
    int64_t now = clock_mono_ms();
    int64_t wait = console_throttle_wait(&con->throttle, addr, now);
    if (wait > 0) {
        explicit_bzero(pass, sizeof(pass));
        char msg[160], secs[24];
        snprintf(secs, sizeof(secs), "%lld", (long long)(wait + 999) / 1000);
        snprintf(msg, sizeof(msg), "Too many failed logins from %s: try again in %s s.", addr,
                 secs);
        return console_login_render(con, c, MHD_HTTP_TOO_MANY_REQUESTS, msg, next,
                                    MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    bool ok = con->src.login(con->src.ctx, user, pass) == 0;
    explicit_bzero(pass, sizeof(pass));
    console_throttle_note(&con->throttle, addr, ok, now);
    if (!ok) {
        logger_warn("console", "failed login as '%s' from %s", user, addr);
        return console_login_form(con, c, MHD_HTTP_UNAUTHORIZED, "Wrong user name or password.",
                                  next);
    }
    char id[CONSOLE_SESSION_HEX_LEN + 1];
    if (console_session_open(&con->sessions, user, now, id) == NULL)
        return console_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no random bytes for a session");
    char cookie[160];
    snprintf(cookie, sizeof(cookie),
             CONSOLE_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
                            "SameSite=Strict",
             id, (long long)(con->sessions.lifetime_ms / 1000));
    logger_info("console", "'%s' signed in from %s", user, addr);
    return console_redirect(c, next, cookie);
}

enum MHD_Result console_logout_post(struct console *con, struct MHD_Connection *c,
                                    const struct console_body *body)
{
    static const char *const gone =
        CONSOLE_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
    const struct console_session *s = console_request_session(con, c);
    if (s == NULL)
        return console_redirect(c, "/login", gone);
    char token[CONSOLE_SESSION_HEX_LEN + 1];
    if (body->overflow || console_form_value(body->data, "csrf", token, sizeof(token)) != 0 ||
        !console_session_csrf_ok(s, token))
        return console_refuse(c, MHD_HTTP_FORBIDDEN, "signing out needs the session's CSRF token");
    char user[CONSOLE_USER_MAX + 1];
    snprintf(user, sizeof(user), "%s", s->user);
    console_session_close(&con->sessions,
                          DYNLIB(MHD_lookup_connection_value)(c, MHD_COOKIE_KIND, CONSOLE_COOKIE));
    logger_info("console", "'%s' signed out", user);
    return console_redirect(c, "/login?signed_out=1", gone);
}
