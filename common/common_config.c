/*
 * Configuration: an INI file read through inih, then long flags that
 * override its keys.  One option table drives both, so a key and its
 * flag can never drift apart.
 */
#include "common.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

struct parse {
    const struct fl_opt *opts;
    bool *from_cli; /* per option: set on the command line */
    bool cli;       /* currently applying command-line values */
    char *err;
    size_t errlen;
    int rc;
};

void
fl_strlist_fini(struct fl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int
fl_strlist_add(struct fl_strlist *l, const char *s)
{
    char **v;
    char *copy;

    copy = strdup(s);
    if (copy == NULL) {
        return FL_ENOMEM;
    }
    v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL) {
        free(copy);
        return FL_ENOMEM;
    }
    v[l->n++] = copy;
    l->v = v;
    return FL_OK;
}

bool
fl_name_is_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-')) {
            return false;
        }
    }
    return true;
}

int
fl_parse_u64(const char *s, bool binary, uint64_t *out)
{
    uint64_t base = binary ? 1024 : 1000;
    uint64_t mult = 1;
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9') {
        return FL_EFORMAT;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
            return FL_EFORMAT;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = base;
        break;
    case 'm':
    case 'M':
        mult = base * base;
        break;
    case 'g':
    case 'G':
        mult = base * base * base;
        break;
    default:
        return FL_EFORMAT;
    }
    if (*p != '\0' && p[1] != '\0') {
        return FL_EFORMAT;
    }
    if (v > UINT64_MAX / mult) {
        return FL_EFORMAT;
    }
    *out = v * mult;
    return FL_OK;
}

int
fl_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *ps;
    size_t hl;
    uint64_t p;

    if (s[0] == '[') {
        colon = strstr(s, "]:");
        if (colon == NULL) {
            return FL_EFORMAT;
        }
        hl = (size_t)(colon - s - 1);
        ps = colon + 2;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (colon != NULL && strchr(s, ':') != colon) {
            return FL_EFORMAT; /* bare IPv6 needs brackets */
        }
        hl = colon != NULL ? (size_t)(colon - s) : 0;
        ps = colon != NULL ? colon + 1 : s;
    }
    /* A port is plain digits; fl_parse_u64 alone would take "2k". */
    if (hl >= hostlen || ps[strspn(ps, "0123456789")] != '\0' ||
        fl_parse_u64(ps, false, &p) != FL_OK || p == 0 || p > 65535) {
        return FL_EFORMAT;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return FL_OK;
}

static int
fail(struct parse *ps, const char *fmt, const char *a, const char *b)
{
    /* inih goes on after a bad line; keep the first line's message. */
    if (ps->rc == FL_OK) {
        snprintf(ps->err, ps->errlen, fmt, a, b);
    }
    ps->rc = FL_EINVAL;
    return FL_EINVAL;
}

static bool
parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "yes") == 0 || strcmp(v, "on") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
        strcmp(v, "no") == 0 || strcmp(v, "off") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* Stores value into option i, from the file or the command line. */
static int
set_opt(struct parse *ps, size_t i, const char *value)
{
    const struct fl_opt *o = &ps->opts[i];
    char **str = o->dst;
    struct fl_strlist *list = o->dst;
    uint64_t *num = o->dst;

    switch (o->type) {
    case FL_OPT_STR:
        free(*str);
        *str = strdup(value);
        return *str != NULL ? FL_OK : FL_ENOMEM;
    case FL_OPT_LIST:
        if (ps->cli && !ps->from_cli[i]) {
            fl_strlist_fini(list); /* the command line replaces the file */
        }
        return fl_strlist_add(list, value);
    case FL_OPT_U64:
    case FL_OPT_SIZE:
        if (fl_parse_u64(value, o->type == FL_OPT_SIZE, num) != FL_OK) {
            return fail(ps, "%s: not a number: %s", o->name, value);
        }
        return FL_OK;
    case FL_OPT_BOOL:
        if (!parse_bool(value, o->dst)) {
            return fail(ps, "%s: not a boolean: %s", o->name, value);
        }
        return FL_OK;
    }
    return FL_EINVAL;
}

static int
config_line(void *user, const char *section, const char *name,
            const char *value)
{
    struct parse *ps = user;

    (void)section;
    for (size_t i = 0; ps->opts[i].name != NULL; i++) {
        if (strcmp(ps->opts[i].name, name) == 0 &&
            strcmp(name, "config") != 0) {
            return set_opt(ps, i, value) == FL_OK;
        }
    }
    fail(ps, "unknown key in configuration file: %s%s", name, "");
    return 0;
}

static int
read_ini(struct parse *ps, const char *path)
{
    int line = ini_parse(path, config_line, ps);

    if (line == -1) {
        return fail(ps, "cannot open configuration file %s%s", path, "");
    }
    if (line != 0) {
        char where[32];

        if (ps->rc == FL_OK) {
            snprintf(ps->err, ps->errlen, "%s: line %d: malformed", path, line);
            return FL_EINVAL;
        }
        snprintf(where, sizeof(where), " (line %d)", line);
        strncat(ps->err, where, ps->errlen - strlen(ps->err) - 1);
        return FL_EINVAL;
    }
    return FL_OK;
}

static long
find_long(const struct fl_opt *opts, const char *name, size_t n)
{
    for (size_t i = 0; opts[i].name != NULL; i++) {
        if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static long
find_short(const struct fl_opt *opts, char c)
{
    for (size_t i = 0; opts[i].name != NULL; i++) {
        if (opts[i].short_name != 0 && opts[i].short_name == c) {
            return (long)i;
        }
    }
    return -1;
}

/*
 * Identifies argv[*k] as an option: sets *idx and *value (NULL when the
 * value is the next argument).  Returns false for a positional argument.
 */
static int
split_arg(struct parse *ps, const char *arg, long *idx, const char **value)
{
    const char *eq;

    *value = NULL;
    if (arg[1] == '-') {
        eq = strchr(arg + 2, '=');
        *idx = find_long(ps->opts, arg + 2,
                         eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        *value = eq != NULL ? eq + 1 : NULL;
    } else {
        *idx = find_short(ps->opts, arg[1]);
        *value = arg[1] != '\0' && arg[2] != '\0' ? arg + 2 : NULL;
    }
    if (*idx < 0) {
        return fail(ps, "unknown option %s%s", arg, "");
    }
    return FL_OK;
}

/* Walks argv: finds the config file, or applies flags when ps->cli. */
static int
walk_argv(struct parse *ps, int argc, char **argv, const char **config,
          struct fl_strlist *rest)
{
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        const char *value;
        long i;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return FL_ENOENT;
        }
        if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0') {
            int from = strcmp(arg, "--") == 0 ? k + 1 : k;
            int to = strcmp(arg, "--") == 0 ? argc : k + 1;

            for (int j = from; ps->cli && rest != NULL && j < to; j++) {
                if (fl_strlist_add(rest, argv[j]) != FL_OK) {
                    return FL_ENOMEM;
                }
            }
            if (strcmp(arg, "--") == 0) {
                break;
            }
            continue;
        }
        if (split_arg(ps, arg, &i, &value) != FL_OK) {
            return FL_EINVAL;
        }
        if (value == NULL && ps->opts[i].type == FL_OPT_BOOL) {
            value = "true";
        } else if (value == NULL) {
            if (k + 1 >= argc) {
                return fail(ps, "option %s needs a value%s", arg, "");
            }
            value = argv[++k];
        }
        if (strcmp(ps->opts[i].name, "config") == 0) {
            *config = value;
        }
        if (ps->cli) {
            int rc = set_opt(ps, (size_t)i, value);

            if (rc != FL_OK) {
                return rc;
            }
            ps->from_cli[i] = true;
        }
    }
    return FL_OK;
}

int
fl_config_parse(const struct fl_opt *opts, int argc, char **argv,
                const char *prog, struct fl_strlist *rest, char *err,
                size_t errlen)
{
    struct parse ps = {opts, NULL, false, err, errlen, FL_OK};
    const char *config = NULL;
    size_t n = 0;
    int rc;

    (void)prog;
    err[0] = '\0';
    while (opts[n].name != NULL) {
        n++;
    }
    ps.from_cli = calloc(n + 1, sizeof(bool));
    if (ps.from_cli == NULL) {
        return FL_ENOMEM;
    }

    /* First pass only finds the file, so that flags override its keys. */
    rc = walk_argv(&ps, argc, argv, &config, NULL);
    if (rc == FL_OK && config != NULL) {
        rc = read_ini(&ps, config);
    }
    if (rc == FL_OK) {
        ps.cli = true;
        rc = walk_argv(&ps, argc, argv, &config, rest);
    }
    free(ps.from_cli);
    return rc;
}

void
fl_config_usage(const struct fl_opt *opts, const char *prog,
                const char *synopsis, FILE *out)
{
    fprintf(out, "usage: %s %s\n\noptions (also INI keys):\n", prog, synopsis);
    for (size_t i = 0; opts[i].name != NULL; i++) {
        char flag[64];

        snprintf(flag, sizeof(flag), "%s%c%s--%s %s",
                 opts[i].short_name != 0 ? "-" : "",
                 opts[i].short_name != 0 ? opts[i].short_name : ' ',
                 opts[i].short_name != 0 ? ", " : "  ", opts[i].name,
                 opts[i].arg != NULL ? opts[i].arg : "");
        fprintf(out, "  %-34s %s\n", flag, opts[i].help);
    }
}

void
fl_config_fini(const struct fl_opt *opts)
{
    for (size_t i = 0; opts[i].name != NULL; i++) {
        if (opts[i].type == FL_OPT_STR) {
            char **str = opts[i].dst;

            free(*str);
            *str = NULL;
        } else if (opts[i].type == FL_OPT_LIST) {
            fl_strlist_fini(opts[i].dst);
        }
    }
}
