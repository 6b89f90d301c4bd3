/*
 * Configuration: an INI file written to a temporary path and command
 * lines parsed against one option table, plus the small parsers for
 * numbers, host:port pairs and names.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* The option destinations every test parses into. */
static char *config_path;
static char *listen_on;
static char *name;
static struct fl_strlist exporters;
static uint64_t buffer;
static uint64_t rate;
static bool verbose;
static bool daemonize;

static const struct fl_opt opts[] = {
    {"config", 'c', FL_OPT_STR, &config_path, "FILE", "configuration file"},
    {"listen", 'l', FL_OPT_STR, &listen_on, "[ADDR:]PORT", "where to listen"},
    {"name", 0, FL_OPT_STR, &name, "NAME", "sensor name"},
    {"exporter", 'e', FL_OPT_LIST, &exporters, "ADDR", "allowed exporter"},
    {"buffer", 'b', FL_OPT_SIZE, &buffer, "BYTES", "socket buffer"},
    {"rate", 'r', FL_OPT_U64, &rate, "N", "flows per second"},
    {"verbose", 'v', FL_OPT_BOOL, &verbose, NULL, "log more"},
    {"daemon", 0, FL_OPT_BOOL, &daemonize, NULL, "run in the background"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static char ini_path[64];
static struct fl_strlist rest;
static char err[256];

static void
cleanup(void)
{
    fl_config_fini(opts);
    fl_strlist_fini(&rest);
    if (ini_path[0] != '\0') {
        unlink(ini_path);
        ini_path[0] = '\0';
    }
}

TestSuite(common_config, .fini = cleanup);

/* Writes text to a fresh temporary file and returns its path. */
static char *
write_ini(const char *text)
{
    int fd;
    size_t n = strlen(text);

    snprintf(ini_path, sizeof(ini_path), "/tmp/fl0wer-test-ini-XXXXXX");
    fd = mkstemp(ini_path);
    cr_assert_geq(fd, 0, "mkstemp");
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return ini_path;
}

/* argv is NULL-terminated here; argv[0] is the program name. */
static int
parse(char **argv)
{
    int argc = 0;

    while (argv[argc] != NULL) {
        argc++;
    }
    return fl_config_parse(opts, argc, argv, "fl0wer-test", &rest, err,
                           sizeof(err));
}

static const char sample_ini[] = "; a sensor\n"
                                 "[collector]\n"
                                 "listen = 127.0.0.1:2055\n"
                                 "buffer = 4M\n"
                                 "exporter = 192.0.2.1\n"
                                 "exporter = 192.0.2.2\n"
                                 "\n"
                                 "[storage]\n"
                                 "name = edge-1\n"
                                 "rate = 10k\n"
                                 "verbose = yes\n";

Test(common_config, reads_keys_from_any_section)
{
    char *argv[] = {"prog", "-c", write_ini(sample_ini), NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_str_eq(listen_on, "127.0.0.1:2055");
    cr_assert_str_eq(name, "edge-1");
    cr_assert_eq(buffer, 4u << 20);
    cr_assert_eq(rate, 10000);
    cr_assert(verbose);
    cr_assert(!daemonize);
    cr_assert_eq(exporters.n, 2);
    cr_assert_str_eq(exporters.v[0], "192.0.2.1");
    cr_assert_str_eq(exporters.v[1], "192.0.2.2");
    cr_assert_str_eq(config_path, ini_path);
    cr_assert_eq(rest.n, 0);
}

Test(common_config, long_flags_override_file_keys)
{
    /* The flag comes before the file on purpose: order must not matter. */
    char *argv[] = {"prog",
                    "--rate",
                    "5",
                    "--listen=0.0.0.0:9995",
                    "--config",
                    write_ini(sample_ini),
                    "--verbose=no",
                    NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_eq(rate, 5);
    cr_assert_str_eq(listen_on, "0.0.0.0:9995");
    cr_assert(!verbose);
    /* Keys without a flag keep the file's value. */
    cr_assert_str_eq(name, "edge-1");
    cr_assert_eq(buffer, 4u << 20);
}

Test(common_config, accepts_name_equals_value_form)
{
    char *argv[] = {"prog",      "--name=core-2",          "--buffer=64K",
                    "--listen=", "--exporter=2001:db8::1", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_str_eq(name, "core-2");
    cr_assert_eq(buffer, 65536);
    cr_assert_str_eq(listen_on, "");
    cr_assert_eq(exporters.n, 1);
    cr_assert_str_eq(exporters.v[0], "2001:db8::1");
}

Test(common_config, takes_short_options_with_attached_or_separate_values)
{
    char *argv[] = {"prog", "-l[::1]:4739", "-r", "7", "-b1K", "-e",
                    "x",    "-ey",          NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_str_eq(listen_on, "[::1]:4739");
    cr_assert_eq(rate, 7);
    cr_assert_eq(buffer, 1024);
    cr_assert_eq(exporters.n, 2);
    cr_assert_str_eq(exporters.v[0], "x");
    cr_assert_str_eq(exporters.v[1], "y");
}

Test(common_config, command_line_list_replaces_file_list)
{
    char *argv[] = {"prog",
                    "-e",
                    "198.51.100.1",
                    "-c",
                    write_ini(sample_ini),
                    "--exporter",
                    "198.51.100.2",
                    NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_eq(exporters.n, 2);
    cr_assert_str_eq(exporters.v[0], "198.51.100.1");
    cr_assert_str_eq(exporters.v[1], "198.51.100.2");
}

Test(common_config, bool_flags_take_no_value)
{
    char *argv[] = {"prog", "-v", "--daemon", "input.pcap", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert(verbose);
    cr_assert(daemonize);
    /* The argument after a bool flag is not swallowed as its value. */
    cr_assert_eq(rest.n, 1);
    cr_assert_str_eq(rest.v[0], "input.pcap");
}

Test(common_config, rejects_a_bool_that_is_not_one)
{
    char *argv[] = {"prog", "--daemon=maybe", NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "daemon"), "err: %s", err);
    cr_assert_not_null(strstr(err, "maybe"), "err: %s", err);
}

Test(common_config, size_suffixes_are_binary_and_counts_decimal)
{
    static const struct {
        const char *text;
        bool binary;
        uint64_t want;
    } cases[] = {
        {"0", false, 0},
        {"2055", false, 2055},
        {"2k", false, 2000},
        {"2K", false, 2000},
        {"5M", false, 5000000},
        {"1G", false, 1000000000},
        {"2K", true, 2048},
        {"3k", true, 3072},
        {"1M", true, 1048576},
        {"3G", true, 3221225472ull},
        {"18446744073709551615", false, UINT64_MAX},
        {"18446744073709551", false, 18446744073709551ull},
        {"18446744073709551k", false, 18446744073709551000ull},
        {"17179869183G", true, 17179869183ull << 30},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 1;

        cr_assert_eq(fl_parse_u64(cases[i].text, cases[i].binary, &v), FL_OK,
                     "%s", cases[i].text);
        cr_assert_eq(v, cases[i].want, "%s gave %llu", cases[i].text,
                     (unsigned long long)v);
    }
}

Test(common_config, size_and_number_options_use_their_suffixes)
{
    char *argv[] = {"prog", "--buffer", "2M", "--rate", "2M", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_eq(buffer, 2u << 20);
    cr_assert_eq(rate, 2000000);
}

Test(common_config, rejects_overflow_and_junk_in_numbers)
{
    static const char *const bad[] = {
        "18446744073709551616",
        "99999999999999999999999",
        "18446744073709552k",
        "18446744073709552M",
        "",
        "k",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1KB",
        "1.5M",
        "1T",
        "0x10",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 7;

        cr_assert_eq(fl_parse_u64(bad[i], false, &v), FL_EFORMAT,
                     "accepted \"%s\" as a count", bad[i]);
        cr_assert_eq(fl_parse_u64(bad[i], true, &v), FL_EFORMAT,
                     "accepted \"%s\" as a size", bad[i]);
        cr_assert_eq(v, 7, "a failed parse leaves the output alone");
    }
}

Test(common_config, overflow_depends_on_the_suffix_base)
{
    uint64_t v = 0;

    /* 2^34 G is 2^64 bytes but only 1.7e19 flows, which still fits. */
    cr_assert_eq(fl_parse_u64("17179869184G", true, &v), FL_EFORMAT);
    cr_assert_eq(fl_parse_u64("17179869184G", false, &v), FL_OK);
    cr_assert_eq(v, 17179869184000000000ull);
    cr_assert_eq(fl_parse_u64("18446744073709552K", true, &v), FL_EFORMAT);
    cr_assert_eq(fl_parse_u64("18014398509481983K", true, &v), FL_OK);
    cr_assert_eq(v, 18014398509481983ull * 1024);
}

Test(common_config, reports_overflowing_option_values)
{
    char *argv[] = {"prog", "--rate", "18446744073709551616", NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "rate"), "err: %s", err);
    cr_assert_not_null(strstr(err, "18446744073709551616"), "err: %s", err);
}

Test(common_config, rejects_unknown_keys_with_their_line)
{
    char *argv[] = {"prog", "-c",
                    write_ini("[collector]\nlisten = 2055\nbogus = 1\n"), NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "bogus"), "err: %s", err);
    cr_assert_not_null(strstr(err, "line 3"), "err: %s", err);
}

Test(common_config, names_the_first_bad_key_when_there_are_several)
{
    char *argv[] = {"prog", "-c",
                    write_ini("first = 1\nname = ok\nsecond = 2\n"), NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "first"), "err: %s", err);
    cr_assert_not_null(strstr(err, "line 1"), "err: %s", err);
    cr_assert_null(strstr(err, "second"), "err: %s", err);
}

Test(common_config, rejects_bad_values_in_the_file)
{
    char *argv[] = {"prog", "-c", write_ini("name = x\nrate = fast\n"), NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "rate"), "err: %s", err);
    cr_assert_not_null(strstr(err, "fast"), "err: %s", err);
    cr_assert_not_null(strstr(err, "line 2"), "err: %s", err);
}

Test(common_config, rejects_malformed_ini_lines)
{
    char *argv[] = {"prog", "-c", write_ini("name = x\nthis is no key\n"),
                    NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "line 2"), "err: %s", err);
}

Test(common_config, reports_a_missing_config_file)
{
    char *argv[] = {"prog", "-c", "/nonexistent/fl0wer.conf", NULL};

    cr_assert_eq(parse(argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "/nonexistent/fl0wer.conf"), "err: %s", err);
}

Test(common_config, rejects_unknown_flags)
{
    char *long_argv[] = {"prog", "--bogus", "1", NULL};
    char *short_argv[] = {"prog", "-x", NULL};
    char *prefix_argv[] = {"prog", "--list=1", NULL};

    cr_assert_eq(parse(long_argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "--bogus"), "err: %s", err);
    cr_assert_eq(parse(short_argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "-x"), "err: %s", err);
    /* No abbreviations: "--list" is not "--listen". */
    cr_assert_eq(parse(prefix_argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "--list"), "err: %s", err);
}

Test(common_config, rejects_a_flag_missing_its_value)
{
    char *long_argv[] = {"prog", "-v", "--listen", NULL};
    char *short_argv[] = {"prog", "-r", NULL};

    cr_assert_eq(parse(long_argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "--listen"), "err: %s", err);
    cr_assert_eq(parse(short_argv), FL_EINVAL);
    cr_assert_not_null(strstr(err, "-r"), "err: %s", err);
}

Test(common_config, help_returns_enoent_without_a_message)
{
    char *long_argv[] = {"prog", "-v", "--help", "--bogus", NULL};
    char *short_argv[] = {"prog", "-h", NULL};
    /* A value that happens to read "-h" is a value, not a help request. */
    char *value_argv[] = {"prog", "--name", "-h", NULL};

    cr_assert_eq(parse(long_argv), FL_ENOENT);
    cr_assert_str_eq(err, "");
    cr_assert_eq(parse(short_argv), FL_ENOENT);
    cr_assert_str_eq(err, "");
    cr_assert_eq(parse(value_argv), FL_OK, "%s", err);
    cr_assert_str_eq(name, "-h");
}

Test(common_config, double_dash_ends_options)
{
    char *argv[] = {"prog", "a", "--", "--verbose", "-x", "b", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert(!verbose);
    cr_assert_eq(rest.n, 4);
    cr_assert_str_eq(rest.v[0], "a");
    cr_assert_str_eq(rest.v[1], "--verbose");
    cr_assert_str_eq(rest.v[2], "-x");
    cr_assert_str_eq(rest.v[3], "b");
}

Test(common_config, collects_positional_arguments_in_order)
{
    char *argv[] = {"prog", "in.pcap", "-r", "3", "-", "out", "-v", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_eq(rate, 3);
    cr_assert(verbose);
    cr_assert_eq(rest.n, 3);
    cr_assert_str_eq(rest.v[0], "in.pcap");
    cr_assert_str_eq(rest.v[1], "-");
    cr_assert_str_eq(rest.v[2], "out");
}

Test(common_config, fini_frees_and_resets_destinations)
{
    char *argv[] = {"prog", "-c", write_ini(sample_ini), "--name", "n2", NULL};

    cr_assert_eq(parse(argv), FL_OK, "%s", err);
    cr_assert_str_eq(name, "n2");
    fl_config_fini(opts);
    cr_assert_null(name);
    cr_assert_null(listen_on);
    cr_assert_null(config_path);
    cr_assert_null(exporters.v);
    cr_assert_eq(exporters.n, 0);
}

Test(common_config, usage_lists_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    fl_config_usage(opts, "fl0wer-test", "[options]", f);
    fclose(f);
    cr_assert_not_null(strstr(text, "fl0wer-test [options]"), "%s", text);
    for (size_t i = 0; opts[i].name != NULL; i++) {
        char flag[32];

        snprintf(flag, sizeof(flag), "--%s", opts[i].name);
        cr_assert_not_null(strstr(text, flag), "%s missing", flag);
        cr_assert_not_null(strstr(text, opts[i].help), "help of %s", flag);
    }
    cr_assert_not_null(strstr(text, "-l, --listen [ADDR:]PORT"), "%s", text);
    free(text);
}

/* ---- host:port, names ---------------------------------------------- */

static void
assert_hostport(const char *s, const char *host, uint16_t port)
{
    char h[64];
    uint16_t p = 0;

    cr_assert_eq(fl_parse_hostport(s, h, sizeof(h), &p), FL_OK, "%s", s);
    cr_assert_str_eq(h, host, "host of %s", s);
    cr_assert_eq(p, port, "port of %s", s);
}

Test(common_config, splits_host_and_port)
{
    assert_hostport("2055", "", 2055);
    assert_hostport("127.0.0.1:2055", "127.0.0.1", 2055);
    assert_hostport("[::1]:2055", "::1", 2055);
    assert_hostport("[2001:db8::1]:4739", "2001:db8::1", 4739);
    assert_hostport("0.0.0.0:1", "0.0.0.0", 1);
    assert_hostport("collector:65535", "collector", 65535);
    assert_hostport("[::]:9995", "::", 9995);
}

Test(common_config, rejects_bad_host_port_texts)
{
    static const char *const bad[] = {
        "::1:2055", "2001:db8::1", "0",          "65536",
        "99999",    "1.2.3.4:0",   "1.2.3.4:",   "1.2.3.4",
        "",         "[::1]",       "[::1]2055",  "[::1:2055",
        "2k",       "2055x",       "1.2.3.4:-1", "1.2.3.4: 80",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char h[64];
        uint16_t p;

        cr_assert_eq(fl_parse_hostport(bad[i], h, sizeof(h), &p), FL_EFORMAT,
                     "accepted \"%s\"", bad[i]);
    }
}

Test(common_config, rejects_a_host_longer_than_the_buffer)
{
    char h[4];
    uint16_t p;

    cr_assert_eq(fl_parse_hostport("abc:1", h, sizeof(h), &p), FL_OK);
    cr_assert_str_eq(h, "abc");
    cr_assert_eq(fl_parse_hostport("abcd:1", h, sizeof(h), &p), FL_EFORMAT);
    cr_assert_eq(fl_parse_hostport("[::1:2]:1", h, sizeof(h), &p), FL_EFORMAT);
}

Test(common_config, accepts_only_safe_names)
{
    char longest[66];

    cr_assert(fl_name_is_valid("edge-1"));
    cr_assert(fl_name_is_valid("a"));
    cr_assert(fl_name_is_valid("Core_2.site-A"));
    cr_assert(fl_name_is_valid("0"));
    memset(longest, 'x', 64);
    longest[64] = '\0';
    cr_assert(fl_name_is_valid(longest));

    longest[64] = 'x';
    longest[65] = '\0';
    cr_assert(!fl_name_is_valid(longest));
    cr_assert(!fl_name_is_valid(""));
    cr_assert(!fl_name_is_valid("a b"));
    cr_assert(!fl_name_is_valid("a/b"));
    cr_assert(!fl_name_is_valid("a\"b"));
    cr_assert(!fl_name_is_valid("a\\b"));
    cr_assert(!fl_name_is_valid("caf\xc3\xa9"));
    cr_assert(!fl_name_is_valid("tab\t"));
    cr_assert(!fl_name_is_valid("a:b"));
}
