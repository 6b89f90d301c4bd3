/*
 * The nfdump filter language: a tokenizer, a recursive-descent parser into
 * a syntax tree, the evaluator run on every candidate flow, and the
 * planner that derives from the tree the address needs the index prunes by.
 */
#include "aggregator.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- syntax tree ------------------------------------------------------- */

enum node_kind {
    NODE_ANY,    /* matches everything */
    NODE_AND,    /* all kids */
    NODE_OR,     /* any kid */
    NODE_NOT,    /* kids[0] does not match */
    NODE_ADDR,   /* address on side lies in the prefix set */
    NODE_NUM,    /* numeric field compared with value, or in values */
    NODE_FAMILY, /* IPv4 or IPv6 flow */
};

/* Numeric fields; issue 5 adds flags, interfaces, VLAN, ... here. */
enum num_field {
    FIELD_PORT,
    FIELD_PROTO,
    FIELD_AS,
    FIELD_PACKETS,
    FIELD_BYTES,
    FIELD_TOS,
};

enum cmp {
    CMP_EQ,
    CMP_LT,
    CMP_GT,
    CMP_LE,
    CMP_GE,
    CMP_IN,
};

/* Prefixes sorted by (length, address), grouped by length, so that a
 * list of thousands costs one binary search per distinct length. */
struct pgroup {
    uint8_t len;
    size_t start;
    size_t n;
    uint64_t mask_hi; /* len as a mask over the address, big-endian */
    uint64_t mask_lo;
};

/* An address as two big-endian words: compared like memcmp, masked in
 * two ANDs.  The evaluator runs once or twice per record scanned. */
struct pkey {
    uint64_t hi;
    uint64_t lo;
};

struct pset {
    struct fl_prefix *p;
    size_t n;
    struct pgroup *groups;
    size_t ngroups;
    struct pkey *keys; /* p's addresses, in p's order */
};

struct node {
    enum node_kind kind;
    enum fl_side side;
    enum num_field field;
    enum cmp cmp;
    uint64_t value; /* NODE_NUM; NODE_FAMILY: 4 or 6 */
    uint64_t *values;
    size_t nvalues;
    struct pset set; /* NODE_ADDR */
    struct node **kids;
    size_t nkids;
};

struct fl_filter {
    struct node *root; /* NULL: the empty filter, matches everything */
    struct node **nodes;
    size_t nnodes;
    size_t capnodes;
    struct fl_prefix **owned; /* merged prefix lists of or-needs */
    size_t nowned;
    size_t capowned;
    struct fl_scan_need needs[FL_FILTER_MAX_NEEDS];
    size_t nneeds;
};

static void
node_free(struct node *n)
{
    if (n == NULL) {
        return;
    }
    free(n->values);
    free(n->set.p);
    free(n->set.groups);
    free(n->set.keys);
    free(n->kids);
    free(n);
}

void
fl_filter_free(struct fl_filter *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->nnodes; i++) {
        node_free(f->nodes[i]);
    }
    for (size_t i = 0; i < f->nowned; i++) {
        free(f->owned[i]);
    }
    free(f->nodes);
    free(f->owned);
    free(f);
}

/* Grows an array of pointers by one slot; the filter owns what it holds. */
static int
push_ptr(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        void **grown = realloc(*arr, ncap * sizeof(**arr));

        if (grown == NULL) {
            return FL_ENOMEM;
        }
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return FL_OK;
}

static struct node *
node_new(struct fl_filter *f, enum node_kind kind)
{
    struct node *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        return NULL;
    }
    if (push_ptr((void ***)&f->nodes, &f->nnodes, &f->capnodes, n) != FL_OK) {
        free(n);
        return NULL;
    }
    n->kind = kind;
    n->side = FL_SIDE_ANY;
    return n;
}

/* ---- prefix sets ------------------------------------------------------- */

static int
prefix_order(const void *a, const void *b)
{
    const struct fl_prefix *x = a;
    const struct fl_prefix *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return fl_addr_cmp(&x->addr, &y->addr);
}

static uint64_t
load_be64(const uint8_t *b)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

static struct pkey
pkey_of(const struct fl_addr *a)
{
    struct pkey k = {load_be64(a->b), load_be64(a->b + 8)};

    return k;
}

static uint64_t
mask_word(unsigned len)
{
    return len == 0 ? 0 : len >= 64 ? UINT64_MAX : ~(UINT64_MAX >> len);
}

/* Sorts the set and indexes its lengths; called once the list is read. */
static int
pset_finish(struct pset *s)
{
    if (s->n > 1) {
        qsort(s->p, s->n, sizeof(*s->p), prefix_order);
    }
    s->groups = calloc(129, sizeof(*s->groups));
    s->keys = calloc(s->n > 0 ? s->n : 1, sizeof(*s->keys));
    if (s->groups == NULL || s->keys == NULL) {
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        unsigned len = s->p[i].len;

        s->keys[i] = pkey_of(&s->p[i].addr);
        if (s->ngroups == 0 || s->groups[s->ngroups - 1].len != len) {
            s->groups[s->ngroups].len = (uint8_t)len;
            s->groups[s->ngroups].start = i;
            s->groups[s->ngroups].mask_hi = mask_word(len);
            s->groups[s->ngroups].mask_lo = mask_word(len > 64 ? len - 64 : 0);
            s->ngroups++;
        }
        s->groups[s->ngroups - 1].n++;
    }
    return FL_OK;
}

/* Binary search of one length's keys for the masked address. */
static inline bool
pgroup_holds(const struct pkey *k, size_t n, uint64_t hi, uint64_t lo)
{
    size_t lo_i = 0;

    if (n == 1) {
        /* The usual "net X" or "host X": one comparison, no search. */
        return k->hi == hi && k->lo == lo;
    }

    while (n > 0) {
        size_t half = n / 2;
        const struct pkey *m = &k[lo_i + half];

        if (m->hi == hi && m->lo == lo) {
            return true;
        }
        if (m->hi < hi || (m->hi == hi && m->lo < lo)) {
            lo_i += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    return false;
}

static inline bool
pset_contains(const struct pset *s, const struct fl_addr *a)
{
    struct pkey key = pkey_of(a);

    for (size_t g = 0; g < s->ngroups; g++) {
        const struct pgroup *gr = &s->groups[g];

        if (pgroup_holds(s->keys + gr->start, gr->n, key.hi & gr->mask_hi,
                         key.lo & gr->mask_lo)) {
            return true;
        }
    }
    return false;
}

/* ---- tokens ------------------------------------------------------------ */

enum tok_kind {
    TOK_WORD,
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_LBRACK,
    TOK_RBRACK,
    TOK_COMMA,
    TOK_NOT,
    TOK_AND,
    TOK_OR,
    TOK_CMP,
    TOK_END,
};

struct token {
    enum tok_kind kind;
    const char *s;
    size_t len;
    size_t col; /* 1-based */
    enum cmp cmp;
};

struct parser {
    struct token *toks;
    size_t ntoks;
    size_t pos;
    unsigned depth;
    struct fl_filter *f;
    char *err;
    size_t errlen;
    size_t *column;
    int rc;
};

/* Records the first error only; returns NULL so callers can return it. */
static struct node *fail_at(struct parser *p, size_t col, int rc,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct node *
fail_at(struct parser *p, size_t col, int rc, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    if (p->rc != FL_OK) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s at column %zu", what, col);
    if (p->column != NULL) {
        *p->column = col;
    }
    p->rc = rc;
    return NULL;
}

static bool
is_word_char(char c)
{
    return c != '\0' && !isspace((unsigned char)c) &&
           strchr("()[],!&|<>=", c) == NULL;
}

static bool
word_is(const struct token *t, const char *kw)
{
    return t->kind == TOK_WORD && strlen(kw) == t->len &&
           strncasecmp(t->s, kw, t->len) == 0;
}

/* Operators of one or two characters; false for a lone '&' or '|'. */
static bool
lex_operator(const char *s, struct token *t)
{
    static const struct {
        const char *text;
        enum tok_kind kind;
        enum cmp cmp;
    } ops[] = {
        {"&&", TOK_AND, CMP_EQ},   {"||", TOK_OR, CMP_EQ},
        {"==", TOK_CMP, CMP_EQ},   {"<=", TOK_CMP, CMP_LE},
        {">=", TOK_CMP, CMP_GE},   {"(", TOK_LPAREN, CMP_EQ},
        {")", TOK_RPAREN, CMP_EQ}, {"[", TOK_LBRACK, CMP_EQ},
        {"]", TOK_RBRACK, CMP_EQ}, {",", TOK_COMMA, CMP_EQ},
        {"!", TOK_NOT, CMP_EQ},    {"=", TOK_CMP, CMP_EQ},
        {"<", TOK_CMP, CMP_LT},    {">", TOK_CMP, CMP_GT},
    };

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);

        if (strncmp(s, ops[i].text, n) == 0) {
            t->kind = ops[i].kind;
            t->cmp = ops[i].cmp;
            t->len = n;
            return true;
        }
    }
    return false;
}

/* Splits text into tokens; the list always ends with TOK_END. */
static int
lex(struct parser *p, const char *text)
{
    size_t len = strlen(text);
    size_t i = 0;

    /* No text yields more tokens than characters, plus the end. */
    p->toks = calloc(len + 1, sizeof(*p->toks));
    if (p->toks == NULL) {
        return FL_ENOMEM;
    }
    while (i < len) {
        struct token *t = &p->toks[p->ntoks];

        if (isspace((unsigned char)text[i])) {
            i++;
            continue;
        }
        t->s = text + i;
        t->col = i + 1;
        if (is_word_char(text[i])) {
            while (is_word_char(text[i + t->len])) {
                t->len++;
            }
            t->kind = TOK_WORD;
            if (word_is(t, "and")) {
                t->kind = TOK_AND;
            } else if (word_is(t, "or")) {
                t->kind = TOK_OR;
            } else if (word_is(t, "not")) {
                t->kind = TOK_NOT;
            }
        } else if (!lex_operator(text + i, t)) {
            fail_at(p, i + 1, FL_EFORMAT, "unexpected character '%c'", text[i]);
            return p->rc;
        }
        i += t->len;
        p->ntoks++;
    }
    p->toks[p->ntoks].kind = TOK_END;
    p->toks[p->ntoks].s = text + len;
    p->toks[p->ntoks].col = len + 1;
    p->ntoks++;
    return FL_OK;
}

static const struct token *
peek(const struct parser *p)
{
    return &p->toks[p->pos];
}

static const struct token *
next(struct parser *p)
{
    const struct token *t = &p->toks[p->pos];

    if (t->kind != TOK_END) {
        p->pos++;
    }
    return t;
}

/* Copies a word into buf; false when it does not fit. */
static bool
word_copy(const struct token *t, char *buf, size_t cap)
{
    if (t->kind != TOK_WORD || t->len >= cap) {
        return false;
    }
    memcpy(buf, t->s, t->len);
    buf[t->len] = '\0';
    return true;
}

/* ---- addresses and numbers --------------------------------------------- */

/*
 * nfdump lets a network drop its trailing zero bytes: "172.16/16" is
 * 172.16.0.0/16.  Pads such an IPv4 prefix to four bytes in place.
 */
static void
pad_short_v4(char *buf, size_t cap)
{
    char *slash = strchr(buf, '/');
    char tail[64];
    int dots = 0;

    if (slash == NULL || strchr(buf, ':') != NULL || strlen(slash) >= 64) {
        return;
    }
    for (char *c = buf; c < slash; c++) {
        if (*c == '.') {
            dots++;
        } else if (!isdigit((unsigned char)*c)) {
            return;
        }
    }
    if (dots >= 3 || slash == buf || slash[-1] == '.') {
        return;
    }
    snprintf(tail, sizeof(tail), "%s", slash);
    *slash = '\0';
    while (dots++ < 3 && strlen(buf) + 2 < cap) {
        strcat(buf, ".0");
    }
    if (strlen(buf) + strlen(tail) < cap) {
        strcat(buf, tail);
    }
}

/* One list entry or operand: an address (host prefix) or a prefix. */
static bool
parse_prefix_word(const struct token *t, bool need_len, struct fl_prefix *out)
{
    char buf[FL_ADDR_STRLEN + 40];

    if (!word_copy(t, buf, sizeof(buf))) {
        return false;
    }
    if (need_len && strchr(buf, '/') == NULL) {
        return false;
    }
    pad_short_v4(buf, sizeof(buf));
    return fl_prefix_parse(buf, out) == FL_OK;
}

/* Decimal digits only, at most max. */
static bool
parse_uint(const struct token *t, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (t->kind != TOK_WORD || t->len == 0 || t->len > 20) {
        return false;
    }
    for (size_t i = 0; i < t->len; i++) {
        if (!isdigit((unsigned char)t->s[i])) {
            return false;
        }
        if (v > (max - (uint64_t)(t->s[i] - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(t->s[i] - '0');
    }
    *out = v;
    return true;
}

/* Counters take nfdump's k, M, G suffixes (powers of 1000). */
static bool
parse_counter(const struct token *t, uint64_t *out)
{
    char buf[32];

    if (!word_copy(t, buf, sizeof(buf))) {
        return false;
    }
    return fl_parse_u64(buf, false, out) == FL_OK;
}

static const struct {
    const char *name;
    uint8_t number;
} protocols[] = {
    {"icmp", 1},  {"igmp", 2},  {"tcp", 6},    {"udp", 17},       {"gre", 47},
    {"esp", 50},  {"ah", 51},   {"icmp6", 58}, {"ipv6-icmp", 58}, {"eigrp", 88},
    {"ospf", 89}, {"pim", 103}, {"sctp", 132},
};

static bool
parse_protocol(const struct token *t, uint64_t *out)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        if (word_is(t, protocols[i].name)) {
            *out = protocols[i].number;
            return true;
        }
    }
    return parse_uint(t, 255, out);
}

/* An optional comparison: "=", "==", "<", ">", "<=", ">=" or nfdump's
 * words eq, lt, gt, le, ge.  Equality when there is none. */
static enum cmp
parse_cmp(struct parser *p)
{
    static const struct {
        const char *word;
        enum cmp cmp;
    } words[] = {
        {"eq", CMP_EQ}, {"lt", CMP_LT}, {"gt", CMP_GT},
        {"le", CMP_LE}, {"ge", CMP_GE},
    };
    const struct token *t = peek(p);

    if (t->kind == TOK_CMP) {
        next(p);
        return t->cmp;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (word_is(t, words[i].word)) {
            next(p);
            return words[i].cmp;
        }
    }
    return CMP_EQ;
}

/* ---- primitives -------------------------------------------------------- */

/* "[" entry [","] entry ... "]" of prefixes into n->set. */
static struct node *
parse_addr_list(struct parser *p, struct node *n, const char *what)
{
    size_t cap = 0;
    const struct token *t = next(p);

    if (t->kind != TOK_LBRACK) {
        return fail_at(p, t->col, FL_EFORMAT, "expected '['");
    }
    for (t = next(p); t->kind != TOK_RBRACK; t = next(p)) {
        struct fl_prefix pre;

        if (t->kind == TOK_COMMA) {
            continue;
        }
        if (t->kind == TOK_END) {
            return fail_at(p, t->col, FL_EFORMAT, "expected ']'");
        }
        if (!parse_prefix_word(t, false, &pre)) {
            return fail_at(p, t->col, FL_EFORMAT, "expected %s", what);
        }
        if (n->set.n == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            struct fl_prefix *grown = realloc(n->set.p, ncap * sizeof(pre));

            if (grown == NULL) {
                return fail_at(p, t->col, FL_ENOMEM, "out of memory");
            }
            n->set.p = grown;
            cap = ncap;
        }
        n->set.p[n->set.n++] = pre;
    }
    if (n->set.n == 0) {
        return fail_at(p, t->col, FL_EFORMAT, "empty list");
    }
    return n;
}

/* [src|dst] ip|host ADDR, or ... in [ LIST ]. */
static struct node *
prim_ip(struct parser *p, struct node *n)
{
    const struct token *t;

    if (word_is(peek(p), "in")) {
        next(p);
        n = parse_addr_list(p, n, "an address or prefix");
    } else {
        t = next(p);
        n->set.p = malloc(sizeof(*n->set.p));
        if (n->set.p == NULL) {
            return fail_at(p, t->col, FL_ENOMEM, "out of memory");
        }
        if (t->kind == TOK_WORD && memchr(t->s, '/', t->len) != NULL) {
            return fail_at(p, t->col, FL_EFORMAT,
                           "expected an address (use net for a prefix)");
        }
        if (!parse_prefix_word(t, false, &n->set.p[0])) {
            return fail_at(p, t->col, FL_EFORMAT, "expected an address");
        }
        n->set.n = 1;
    }
    if (n == NULL || pset_finish(&n->set) != FL_OK) {
        return fail_at(p, peek(p)->col, FL_ENOMEM, "out of memory");
    }
    return n;
}

/* "net 10.0.0.0 255.0.0.0": the mask as a word of its own. */
static bool
net_with_mask(struct parser *p, const struct token *t, struct fl_prefix *out)
{
    char buf[2 * FL_ADDR_STRLEN + 2];
    char mask[FL_ADDR_STRLEN];
    struct fl_addr m;

    if (!word_copy(t, buf, FL_ADDR_STRLEN) || strchr(buf, '/') != NULL ||
        strchr(buf, ':') != NULL) {
        return false;
    }
    if (!word_copy(peek(p), mask, sizeof(mask)) ||
        fl_addr_parse(mask, &m) != FL_OK) {
        return false;
    }
    strcat(buf, "/");
    strcat(buf, mask);
    if (fl_prefix_parse(buf, out) != FL_OK) {
        return false;
    }
    next(p);
    return true;
}

/* [src|dst] net PREFIX, net ADDR MASK, or net in [ LIST ]. */
static struct node *
prim_net(struct parser *p, struct node *n)
{
    const struct token *t;

    if (word_is(peek(p), "in")) {
        next(p);
        n = parse_addr_list(p, n, "a network");
    } else {
        t = next(p);
        n->set.p = malloc(sizeof(*n->set.p));
        if (n->set.p == NULL) {
            return fail_at(p, t->col, FL_ENOMEM, "out of memory");
        }
        n->set.n = 1;
        if (!net_with_mask(p, t, &n->set.p[0]) &&
            !parse_prefix_word(t, true, &n->set.p[0])) {
            return fail_at(p, t->col, FL_EFORMAT, "expected a network");
        }
    }
    if (n == NULL || pset_finish(&n->set) != FL_OK) {
        return fail_at(p, peek(p)->col, FL_ENOMEM, "out of memory");
    }
    return n;
}

/* "[" N [","] N ... "]" of numbers up to max into n->values. */
static struct node *
parse_num_list(struct parser *p, struct node *n, uint64_t max, const char *what)
{
    size_t cap = 0;
    const struct token *t = next(p);

    if (t->kind != TOK_LBRACK) {
        return fail_at(p, t->col, FL_EFORMAT, "expected '['");
    }
    for (t = next(p); t->kind != TOK_RBRACK; t = next(p)) {
        uint64_t v;

        if (t->kind == TOK_COMMA) {
            continue;
        }
        if (t->kind == TOK_END) {
            return fail_at(p, t->col, FL_EFORMAT, "expected ']'");
        }
        if (!parse_uint(t, max, &v)) {
            return fail_at(p, t->col, FL_EFORMAT, "expected %s", what);
        }
        if (n->nvalues == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            uint64_t *grown = realloc(n->values, ncap * sizeof(v));

            if (grown == NULL) {
                return fail_at(p, t->col, FL_ENOMEM, "out of memory");
            }
            n->values = grown;
            cap = ncap;
        }
        n->values[n->nvalues++] = v;
    }
    if (n->nvalues == 0) {
        return fail_at(p, t->col, FL_EFORMAT, "empty list");
    }
    n->cmp = CMP_IN;
    return n;
}

/* A field compared with a number: port, as, packets, bytes, tos. */
static struct node *
prim_number(struct parser *p, struct node *n, uint64_t max, const char *what)
{
    const struct token *t;

    n->kind = NODE_NUM;
    if (word_is(peek(p), "in")) {
        next(p);
        return parse_num_list(p, n, max, what);
    }
    n->cmp = parse_cmp(p);
    t = next(p);
    if (n->field == FIELD_PACKETS || n->field == FIELD_BYTES) {
        if (!parse_counter(t, &n->value)) {
            return fail_at(p, t->col, FL_EFORMAT, "expected %s", what);
        }
    } else if (!parse_uint(t, max, &n->value)) {
        return fail_at(p, t->col, FL_EFORMAT, "expected %s", what);
    }
    return n;
}

static struct node *
prim_port(struct parser *p, struct node *n)
{
    n->field = FIELD_PORT;
    return prim_number(p, n, 65535, "a port number");
}

static struct node *
prim_as(struct parser *p, struct node *n)
{
    n->field = FIELD_AS;
    return prim_number(p, n, UINT32_MAX, "an AS number");
}

static struct node *
prim_packets(struct parser *p, struct node *n)
{
    n->field = FIELD_PACKETS;
    return prim_number(p, n, UINT64_MAX, "a packet count");
}

static struct node *
prim_bytes(struct parser *p, struct node *n)
{
    n->field = FIELD_BYTES;
    return prim_number(p, n, UINT64_MAX, "a byte count");
}

static struct node *
prim_tos(struct parser *p, struct node *n)
{
    n->field = FIELD_TOS;
    return prim_number(p, n, 255, "a ToS value");
}

static struct node *
prim_proto(struct parser *p, struct node *n)
{
    const struct token *t = next(p);

    n->kind = NODE_NUM;
    n->field = FIELD_PROTO;
    n->cmp = CMP_EQ;
    if (!parse_protocol(t, &n->value)) {
        return fail_at(p, t->col, FL_EFORMAT, "expected a protocol");
    }
    return n;
}

static struct node *
prim_inet(struct parser *p, struct node *n)
{
    (void)p;
    n->kind = NODE_FAMILY;
    n->value = 4;
    return n;
}

static struct node *
prim_inet6(struct parser *p, struct node *n)
{
    (void)p;
    n->kind = NODE_FAMILY;
    n->value = 6;
    return n;
}

/* The primitives: issue 5 adds flags, if, vlan, ... as rows here. */
static const struct {
    const char *word;
    bool directional; /* takes src / dst */
    enum node_kind kind;
    struct node *(*parse)(struct parser *p, struct node *n);
} primitives[] = {
    {"ip", true, NODE_ADDR, prim_ip},
    {"host", true, NODE_ADDR, prim_ip},
    {"net", true, NODE_ADDR, prim_net},
    {"port", true, NODE_NUM, prim_port},
    {"as", true, NODE_NUM, prim_as},
    {"proto", false, NODE_NUM, prim_proto},
    {"packets", false, NODE_NUM, prim_packets},
    {"bytes", false, NODE_NUM, prim_bytes},
    {"tos", false, NODE_NUM, prim_tos},
    {"inet", false, NODE_FAMILY, prim_inet},
    {"ipv4", false, NODE_FAMILY, prim_inet},
    {"inet6", false, NODE_FAMILY, prim_inet6},
    {"ipv6", false, NODE_FAMILY, prim_inet6},
};

static struct node *
parse_primitive(struct parser *p)
{
    const struct token *dir = NULL;
    const struct token *t = peek(p);
    struct node *n;

    if (word_is(t, "any")) {
        next(p);
        return node_new(p->f, NODE_ANY);
    }
    if (word_is(t, "src") || word_is(t, "dst")) {
        dir = next(p);
        t = peek(p);
    }
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
        if (!word_is(t, primitives[i].word)) {
            continue;
        }
        if (dir != NULL && !primitives[i].directional) {
            return fail_at(p, t->col, FL_EFORMAT, "%s takes no src or dst",
                           primitives[i].word);
        }
        next(p);
        n = node_new(p->f, primitives[i].kind);
        if (n == NULL) {
            return fail_at(p, t->col, FL_ENOMEM, "out of memory");
        }
        if (dir != NULL) {
            n->side = word_is(dir, "src") ? FL_SIDE_SRC : FL_SIDE_DST;
        }
        return primitives[i].parse(p, n);
    }
    if (dir != NULL) {
        return fail_at(p, t->col, FL_EFORMAT,
                       "expected ip, host, net, port or as");
    }
    if (t->kind == TOK_WORD) {
        return fail_at(p, t->col, FL_EFORMAT, "unknown filter word '%.*s'",
                       (int)(t->len > 40 ? 40 : t->len), t->s);
    }
    return fail_at(p, t->col, FL_EFORMAT, "expected a filter expression");
}

/* ---- expressions ------------------------------------------------------- */

static struct node *parse_or(struct parser *p);

/* factor := ("not" | "!") factor | "(" expr ")" | primitive */
static struct node *
parse_factor(struct parser *p)
{
    const struct token *t = peek(p);
    struct node *n;
    struct node *kid;

    if (t->kind != TOK_NOT && t->kind != TOK_LPAREN) {
        return parse_primitive(p);
    }
    if (++p->depth > FL_FILTER_MAX_DEPTH) {
        return fail_at(p, t->col, FL_ELIMIT, "nesting deeper than %d",
                       FL_FILTER_MAX_DEPTH);
    }
    next(p);
    if (t->kind == TOK_NOT) {
        kid = parse_factor(p);
        n = kid != NULL ? node_new(p->f, NODE_NOT) : NULL;
        if (n != NULL) {
            n->kids = malloc(sizeof(*n->kids));
            if (n->kids == NULL) {
                return fail_at(p, t->col, FL_ENOMEM, "out of memory");
            }
            n->kids[0] = kid;
            n->nkids = 1;
        }
    } else {
        n = parse_or(p);
        if (n != NULL && peek(p)->kind != TOK_RPAREN) {
            return fail_at(p, peek(p)->col, FL_EFORMAT, "expected ')'");
        }
        next(p);
    }
    p->depth--;
    if (n == NULL) {
        return fail_at(p, t->col, FL_ENOMEM, "out of memory");
    }
    return n;
}

/*
 * A run of operands joined by one operator becomes one node with many
 * kids, so "a and b and c ..." does not nest and cannot exhaust the
 * stack when matched.
 */
static struct node *
parse_chain(struct parser *p, enum tok_kind op, enum node_kind kind,
            struct node *(*operand)(struct parser *p))
{
    struct node *first = operand(p);
    struct node *n;
    size_t cap = 0;

    if (first == NULL || peek(p)->kind != op) {
        return first;
    }
    n = node_new(p->f, kind);
    if (n == NULL ||
        push_ptr((void ***)&n->kids, &n->nkids, &cap, first) != FL_OK) {
        return fail_at(p, peek(p)->col, FL_ENOMEM, "out of memory");
    }
    while (peek(p)->kind == op) {
        struct node *kid;

        next(p);
        kid = operand(p);
        if (kid == NULL) {
            return NULL;
        }
        if (push_ptr((void ***)&n->kids, &n->nkids, &cap, kid) != FL_OK) {
            return fail_at(p, peek(p)->col, FL_ENOMEM, "out of memory");
        }
    }
    return n;
}

/* term := factor { "and" factor }  (and binds tighter than or) */
static struct node *
parse_and(struct parser *p)
{
    return parse_chain(p, TOK_AND, NODE_AND, parse_factor);
}

/* expr := term { "or" term } */
static struct node *
parse_or(struct parser *p)
{
    return parse_chain(p, TOK_OR, NODE_OR, parse_and);
}

/* ---- planner ----------------------------------------------------------- */

/*
 * The needs a node implies: conditions that hold for every flow it
 * matches.  An and implies what each operand implies; an or implies,
 * for one need picked from each branch, the union of their prefixes
 * (side kept when all agree, else either side); not and every other
 * node imply nothing.  Dropping a need is always safe, so the list is
 * cut at its ceiling.
 */
struct needs {
    struct fl_scan_need v[FL_FILTER_MAX_NEEDS];
    size_t n;
};

static int plan(struct fl_filter *f, const struct node *n, struct needs *out);

static int
plan_or(struct fl_filter *f, const struct node *n, struct needs *out)
{
    struct fl_scan_need merged = {FL_SIDE_ANY, NULL, 0};
    struct fl_prefix *union_p;
    struct needs *kid = malloc(n->nkids * sizeof(*kid));
    int rc = FL_OK;

    if (kid == NULL) {
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        kid[i].n = 0;
        rc = plan(f, n->kids[i], &kid[i]);
        if (rc != FL_OK || kid[i].n == 0) {
            goto out; /* a branch without needs: the or implies none */
        }
    }
    /* From each branch, its most selective need: the fewest prefixes. */
    for (size_t i = 0; i < n->nkids; i++) {
        size_t best = 0;

        for (size_t j = 1; j < kid[i].n; j++) {
            if (kid[i].v[j].n < kid[i].v[best].n) {
                best = j;
            }
        }
        kid[i].v[0] = kid[i].v[best];
        merged.side = i == 0 || merged.side == kid[i].v[0].side
                          ? kid[i].v[0].side
                          : FL_SIDE_ANY;
        merged.n += kid[i].v[0].n;
    }
    union_p = malloc(merged.n * sizeof(*union_p));
    if (union_p == NULL || push_ptr((void ***)&f->owned, &f->nowned,
                                    &f->capowned, union_p) != FL_OK) {
        free(union_p);
        rc = FL_ENOMEM;
        goto out;
    }
    merged.n = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        memcpy(union_p + merged.n, kid[i].v[0].prefixes,
               kid[i].v[0].n * sizeof(*union_p));
        merged.n += kid[i].v[0].n;
    }
    merged.prefixes = union_p;
    if (out->n < FL_FILTER_MAX_NEEDS) {
        out->v[out->n++] = merged;
    }
out:
    free(kid);
    return rc;
}

static int
plan(struct fl_filter *f, const struct node *n, struct needs *out)
{
    int rc;

    switch (n->kind) {
    case NODE_ADDR:
        if (out->n == FL_FILTER_MAX_NEEDS) {
            return FL_OK;
        }
        out->v[out->n].side = n->side;
        out->v[out->n].prefixes = n->set.p;
        out->v[out->n].n = n->set.n;
        out->n++;
        return FL_OK;
    case NODE_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            struct needs kid = {.n = 0};

            rc = plan(f, n->kids[i], &kid);
            if (rc != FL_OK) {
                return rc;
            }
            for (size_t j = 0; j < kid.n && out->n < FL_FILTER_MAX_NEEDS; j++) {
                out->v[out->n++] = kid.v[j];
            }
        }
        return FL_OK;
    case NODE_OR:
        return plan_or(f, n, out);
    default:
        return FL_OK;
    }
}

/* ---- evaluator --------------------------------------------------------- */

static bool
compare(enum cmp cmp, uint64_t have, uint64_t want)
{
    switch (cmp) {
    case CMP_EQ:
        return have == want;
    case CMP_LT:
        return have < want;
    case CMP_GT:
        return have > want;
    case CMP_LE:
        return have <= want;
    case CMP_GE:
        return have >= want;
    case CMP_IN:
        break;
    }
    return false;
}

static bool
num_holds(const struct node *n, uint64_t have)
{
    if (n->cmp != CMP_IN) {
        return compare(n->cmp, have, n->value);
    }
    for (size_t i = 0; i < n->nvalues; i++) {
        if (n->values[i] == have) {
            return true;
        }
    }
    return false;
}

/* Directional fields are checked on the named side or on either. */
static bool
eval_num(const struct node *n, const struct fl_flow *f)
{
    uint64_t src;
    uint64_t dst;

    switch (n->field) {
    case FIELD_PORT:
        src = f->src_port;
        dst = f->dst_port;
        break;
    case FIELD_AS:
        src = f->src_as;
        dst = f->dst_as;
        break;
    case FIELD_PROTO:
        return num_holds(n, f->proto);
    case FIELD_PACKETS:
        return num_holds(n, f->packets);
    case FIELD_BYTES:
        return num_holds(n, f->bytes);
    case FIELD_TOS:
        return num_holds(n, f->tos);
    default:
        return false;
    }
    return (n->side != FL_SIDE_DST && num_holds(n, src)) ||
           (n->side != FL_SIDE_SRC && num_holds(n, dst));
}

static bool
eval(const struct node *n, const struct fl_flow *f)
{
    switch (n->kind) {
    case NODE_ANY:
        return true;
    case NODE_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            if (!eval(n->kids[i], f)) {
                return false;
            }
        }
        return true;
    case NODE_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (eval(n->kids[i], f)) {
                return true;
            }
        }
        return false;
    case NODE_NOT:
        return !eval(n->kids[0], f);
    case NODE_ADDR:
        return (n->side != FL_SIDE_DST &&
                pset_contains(&n->set, &f->src_addr)) ||
               (n->side != FL_SIDE_SRC && pset_contains(&n->set, &f->dst_addr));
    case NODE_NUM:
        return eval_num(n, f);
    case NODE_FAMILY:
        return fl_addr_is_v4(&f->src_addr) == (n->value == 4);
    }
    return false;
}

bool
fl_filter_match(const struct fl_filter *f, const struct fl_flow *flow,
                const char *sensor)
{
    (void)sensor; /* TODO(#5): a sensor / ident primitive */
    return f->root == NULL || eval(f->root, flow);
}

void
fl_filter_needs(const struct fl_filter *f, const struct fl_scan_need **needs,
                size_t *n)
{
    *needs = f->needs;
    *n = f->nneeds;
}

/* ---- entry point ------------------------------------------------------- */

int
fl_filter_parse(const char *text, struct fl_filter **out, char *err,
                size_t errlen, size_t *column)
{
    struct parser p = {.err = err, .errlen = errlen, .column = column};
    struct needs needs = {.n = 0};
    int rc;

    *out = NULL;
    err[0] = '\0';
    if (column != NULL) {
        *column = 0;
    }
    if (strlen(text) > FL_FILTER_MAX_TEXT) {
        fail_at(&p, FL_FILTER_MAX_TEXT + 1, FL_ELIMIT, "filter too long");
        return p.rc;
    }
    p.f = calloc(1, sizeof(*p.f));
    if (p.f == NULL) {
        return FL_ENOMEM;
    }
    rc = lex(&p, text);
    if (rc != FL_OK) {
        goto out;
    }
    if (peek(&p)->kind != TOK_END) {
        p.f->root = parse_or(&p);
        if (p.f->root != NULL && peek(&p)->kind != TOK_END) {
            fail_at(&p, peek(&p)->col, FL_EFORMAT, "expected 'and' or 'or'");
        }
    }
    rc = p.rc;
    if (rc == FL_OK && p.f->root != NULL) {
        rc = plan(p.f, p.f->root, &needs);
        memcpy(p.f->needs, needs.v, needs.n * sizeof(needs.v[0]));
        p.f->nneeds = needs.n;
    }
out:
    free(p.toks);
    if (rc != FL_OK) {
        fl_filter_free(p.f);
        return rc;
    }
    *out = p.f;
    return FL_OK;
}
