/*
 * fjord-loadgen: a small librdkafka load generator for bench/throughput.sh.
 *
 *   cc -O2 bench/loadgen.c -lrdkafka -o /tmp/fjord-loadgen
 *
 *   fjord-loadgen produce (--bootstrap H:P | --mock) --topic T [--records N] [--size BYTES]
 *                 [--acks 0|1|all] [--partitions P] [--linger-ms MS] [--batch-size BYTES]
 *                 [--window RECORDS] [--label TEXT]
 *   fjord-loadgen consume (--bootstrap H:P | --mock) --topic T [--records N] [--size BYTES]
 *                 [--partitions P] [--label TEXT]
 *
 * produce: N records of BYTES bytes (null key, random capital letters as Kafka's
 * producer-perf-test), spread over partitions 0..P-1 record by record; at most --window records
 * are sent and not yet acknowledged. The latency of each record runs from the produce call to its
 * delivery report. Timing starts once the metadata of the topic has been fetched (the
 * connection is up) and ends when the last delivery report arrived.
 *
 * consume: reads N records from the beginning of partitions 0..P-1 with a plain assign (no group
 * membership, no commits). Timing starts at the assign and ends with the N-th record.
 *
 * --mock uses librdkafka's in-process mock cluster (test.mock.num.brokers=1) instead of
 * --bootstrap. For consume the records are produced first (untimed) by a producer in this
 * process whose mock cluster the consumer then reads from. The mock keeps only the last few MB
 * of a partition, so the consumer rewinds to the partition's start at each end of partition
 * until it has read N records.
 *
 * Output: one JSON line (for scripts) and one human line on stdout; diagnostics on stderr.
 * Exit status 0 when every record was delivered/consumed, 1 otherwise.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
    const char *mode;
    const char *bootstrap;
    int mock;
    const char *topic;
    long records;
    long size;
    const char *acks;
    int partitions;
    int linger_ms;
    long batch_size;
    long window;
    const char *label;
    int idempotence;
};

struct produce_state {
    int64_t *sent_ns;      /* send time of record i (monotonic ns) */
    double *latency_ms;    /* latency of each delivered record, in delivery order */
    long delivered;
    long failed;
    rd_kafka_resp_err_t first_error;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fjord-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void usage(void) {
    fputs("usage: fjord-loadgen produce|consume (--bootstrap H:P | --mock) --topic T [--records N]\n"
          "       [--size BYTES] [--acks 0|1|all] [--partitions P] [--linger-ms MS] [--batch-size BYTES]\n"
          "       [--window RECORDS] [--idempotence] [--label TEXT]\n", stderr);
    exit(2);
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("config %s=%s: %s", key, value, err);
}

static void setl(rd_kafka_conf_t *conf, const char *key, long value) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", value);
    set(conf, key, buf);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, long n, double p) {
    if (n == 0) return 0;
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    struct produce_state *st = opaque;
    long i = (long)(intptr_t)m->_private;
    if (m->err) {
        if (st->failed++ == 0) st->first_error = m->err;
        return;
    }
    st->latency_ms[st->delivered++] = (double)(now_ns() - st->sent_ns[i]) / 1e6;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk; (void)opaque;
    fprintf(stderr, "fjord-loadgen: client error %s: %s\n", rd_kafka_err2name(err), reason);
}

static rd_kafka_t *new_producer(const struct options *o, struct produce_state *st) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    if (o->mock) set(conf, "test.mock.num.brokers", "1");
    else set(conf, "bootstrap.servers", o->bootstrap);
    set(conf, "acks", o->acks);
    setl(conf, "linger.ms", o->linger_ms);
    setl(conf, "batch.size", o->batch_size);
    set(conf, "compression.type", "none");
    set(conf, "enable.idempotence", o->idempotence ? "true" : "false");
    /* The window below is the bound; librdkafka's own queue must not be the tighter one. */
    setl(conf, "queue.buffering.max.messages", o->window + 1000 > 10000000 ? 10000000 : o->window + 1000);
    setl(conf, "queue.buffering.max.kbytes", 2097151);
    set(conf, "message.max.bytes", "10000000");
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    set(conf, "log_level", "4");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("producer: %s", err);
    if (o->mock) {
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
        if (!mc) die("no mock cluster on the producer handle");
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, o->topic, o->partitions, 1);
        if (e) die("mock topic create: %s", rd_kafka_err2str(e));
    }
    return rk;
}

/* Fetches the topic's metadata so that the connection is up before timing starts. */
static void warm_up(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    for (int attempt = 0; attempt < 50; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
            rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(rkt);
            return;
        }
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    die("no metadata for topic %s", topic);
}

/* Produces o->records records; returns the number of failures. */
static long run_produce(const struct options *o, rd_kafka_t *rk, struct produce_state *st,
                        double *seconds) {
    char *payload = malloc((size_t)o->size);
    if (!payload) die("out of memory");
    srand(42);
    for (long i = 0; i < o->size; i++) payload[i] = (char)('A' + rand() % 26);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    warm_up(rk, o->topic);

    int64_t start = now_ns();
    for (long i = 0; i < o->records; i++) {
        while (i - st->delivered - st->failed >= o->window) rd_kafka_poll(rk, 1);
        st->sent_ns[i] = now_ns();
        /* Flags 0: librdkafka neither copies nor frees the (shared, constant) payload. */
        while (rd_kafka_produce(rkt, (int32_t)(i % o->partitions), 0, payload, (size_t)o->size,
                                NULL, 0, (void *)(intptr_t)i) == -1) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(e));
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
    }
    while (st->delivered + st->failed < o->records) {
        if (now_ns() - start > 600LL * 1000000000) die("gave up waiting for delivery reports");
        rd_kafka_poll(rk, 10);
    }
    *seconds = (double)(now_ns() - start) / 1e9;
    rd_kafka_topic_destroy(rkt);
    free(payload);
    return st->failed;
}

static void report(const struct options *o, const char *mode, long records, long bytes,
                   double seconds, const struct produce_state *st, long errors) {
    double mbs = (double)bytes / seconds / 1e6, rps = (double)records / seconds;
    const char *target = o->mock ? "mock" : "fjord";
    if (st) {
        qsort(st->latency_ms, (size_t)st->delivered, sizeof(double), cmp_double);
        double p50 = percentile(st->latency_ms, st->delivered, 50);
        double p99 = percentile(st->latency_ms, st->delivered, 99);
        double max = st->delivered ? st->latency_ms[st->delivered - 1] : 0;
        printf("{\"client\":\"c\",\"librdkafka\":\"%s\",\"mode\":\"%s\",\"target\":\"%s\",\"label\":\"%s\","
               "\"topic\":\"%s\",\"partitions\":%d,\"records\":%ld,\"size\":%ld,\"acks\":\"%s\","
               "\"seconds\":%.4f,\"mb_per_s\":%.2f,\"records_per_s\":%.0f,"
               "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%ld}\n",
               rd_kafka_version_str(), mode, target, o->label, o->topic, o->partitions, records,
               o->size, o->acks, seconds, mbs, rps, p50, p99, max, errors);
        printf("c %s %s: %ld x %ld B acks=%s p=%d in %.2f s: %.1f MB/s, %.0f records/s, "
               "latency p50 %.2f ms p99 %.2f ms max %.2f ms, %ld errors\n",
               mode, target, records, o->size, o->acks, o->partitions, seconds, mbs, rps, p50,
               p99, max, errors);
        if (errors) fprintf(stderr, "fjord-loadgen: first delivery error: %s\n",
                            rd_kafka_err2str(st->first_error));
    } else {
        printf("{\"client\":\"c\",\"librdkafka\":\"%s\",\"mode\":\"%s\",\"target\":\"%s\",\"label\":\"%s\","
               "\"topic\":\"%s\",\"partitions\":%d,\"records\":%ld,\"size\":%ld,\"acks\":\"%s\","
               "\"seconds\":%.4f,\"mb_per_s\":%.2f,\"records_per_s\":%.0f,"
               "\"p50_ms\":null,\"p99_ms\":null,\"max_ms\":null,\"errors\":%ld}\n",
               rd_kafka_version_str(), mode, target, o->label, o->topic, o->partitions, records,
               o->size, o->acks, seconds, mbs, rps, errors);
        printf("c %s %s: %ld x %ld B p=%d in %.2f s: %.1f MB/s, %.0f records/s, %ld errors\n",
               mode, target, records, o->size, o->partitions, seconds, mbs, rps, errors);
    }
    fflush(stdout);
}

/* fill > 0 (mock only): librdkafka's mock cluster keeps only the last ~5 MB of each partition
 * (older message sets are dropped as new ones arrive), so reading N records from it means
 * reading the retained tail again: when the record at the partition's last offset (known from
 * the `fill` records produced round robin) arrives, the partition is sought back to its start,
 * before the fetcher idles at the end; an end-of-partition event also rewinds. */
static int consume(const struct options *o, const char *bootstrap, long fill) {
    int rewind = fill > 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", "fjord-loadgen");          /* required by the API; no group is joined */
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.partition.eof", rewind ? "true" : "false");
    if (rewind) {
        /* Short waits at the end of the mock's partition (it answers at once anyway). */
        set(conf, "fetch.wait.max.ms", "10");
        set(conf, "fetch.error.backoff.ms", "10");
    }
    set(conf, "auto.offset.reset", "earliest");
    rd_kafka_conf_set_error_cb(conf, on_error);
    set(conf, "log_level", "4");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("consumer: %s", err);
    warm_up(rk, o->topic);

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(o->partitions);
    for (int p = 0; p < o->partitions; p++)
        rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    int64_t start = now_ns();
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    if (e) die("assign: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(parts);

    long got = 0, bytes = 0, errors = 0, rewinds = 0;
    /* The lowest offset seen per partition: the mock's log start once it was read from there,
     * so that later rewinds seek to an absolute offset (no ListOffsets round trip). */
    int64_t *low = malloc(sizeof(int64_t) * (size_t)o->partitions);
    if (!low) die("out of memory");
    for (int p = 0; p < o->partitions; p++) low[p] = -1;
    int64_t last_progress = now_ns();
    while (got < o->records) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_ns() - last_progress > 30LL * 1000000000) {
                fprintf(stderr, "fjord-loadgen: no record for 30 s after %ld records\n", got);
                break;
            }
            continue;
        }
        if (!m->err && (low[m->partition] < 0 || m->offset < low[m->partition]))
            low[m->partition] = m->offset;
        int at_end = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                     (!m->err && m->offset == fill / o->partitions - 1 +
                                              (m->partition < fill % o->partitions));
        if (rewind && at_end) {
            rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
            int64_t lp = low[m->partition];
            rd_kafka_topic_partition_list_add(one, o->topic, m->partition)->offset =
                lp >= 0 ? lp : RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_error_t *se = rd_kafka_seek_partitions(rk, one, 0);
            if (se) die("seek: %s", rd_kafka_error_string(se));
            rd_kafka_topic_partition_list_destroy(one);
            rewinds++;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* nothing: the end of a partition */
        } else if (m->err) {
            errors++;
            fprintf(stderr, "fjord-loadgen: consume error: %s\n", rd_kafka_message_errstr(m));
        } else {
            got++;
            bytes += (long)m->len;
            last_progress = now_ns();
        }
        rd_kafka_message_destroy(m);
    }
    double seconds = (double)(last_progress - start) / 1e9;
    free(low);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (got < o->records) errors += o->records - got;
    if (rewinds) fprintf(stderr, "fjord-loadgen: read the mock's retained tail %ld times\n", rewinds + 1);
    report(o, "consume", got, bytes, seconds, NULL, errors);
    return errors ? 1 : 0;
}

int main(int argc, char **argv) {
    struct options o = {.records = 1000000, .size = 1024, .acks = "1", .partitions = 1,
                        .linger_ms = 5, .batch_size = 262144, .window = 0, .label = ""};
    if (argc < 2) usage();
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && (v || (usage(), 0)) && ++i)
        if (strcmp(a, "--mock") == 0) o.mock = 1;
        else if (strcmp(a, "--idempotence") == 0) o.idempotence = 1;
        else if (ARG("--bootstrap")) o.bootstrap = v;
        else if (ARG("--topic")) o.topic = v;
        else if (ARG("--records")) o.records = atol(v);
        else if (ARG("--size")) o.size = atol(v);
        else if (ARG("--acks")) o.acks = v;
        else if (ARG("--partitions")) o.partitions = atoi(v);
        else if (ARG("--linger-ms")) o.linger_ms = atoi(v);
        else if (ARG("--batch-size")) o.batch_size = atol(v);
        else if (ARG("--window")) o.window = atol(v);
        else if (ARG("--label")) o.label = v;
        else usage();
#undef ARG
    }
    if (!o.topic || (!o.mock && !o.bootstrap) || o.records <= 0 || o.size <= 0 || o.partitions <= 0)
        usage();
    /* Default window: 32 MiB of records in flight, as the Java producer's buffer.memory. */
    if (o.window <= 0) o.window = (32L << 20) / o.size < 1000 ? 1000 : (32L << 20) / o.size;

    int produce_mode = strcmp(o.mode, "produce") == 0;
    if (!produce_mode && strcmp(o.mode, "consume") != 0) usage();

    if (!produce_mode && !o.mock) return consume(&o, o.bootstrap, 0);

    struct produce_state st = {0};
    st.sent_ns = malloc(sizeof(int64_t) * (size_t)o.records);
    st.latency_ms = malloc(sizeof(double) * (size_t)o.records);
    if (!st.sent_ns || !st.latency_ms) die("out of memory");
    /* Filling the mock for consume: 64 MiB is well past what it retains. */
    struct options fill = o;
    if (!produce_mode && fill.records > (64L << 20) / o.size) fill.records = (64L << 20) / o.size;
    if (fill.records < o.partitions) fill.records = o.partitions;
    rd_kafka_t *rk = new_producer(&fill, &st);
    double seconds = 0;
    long failed = run_produce(&fill, rk, &st, &seconds);
    int status;
    if (produce_mode) {
        report(&o, "produce", o.records, (long)st.delivered * o.size, seconds, &st, failed);
        status = failed ? 1 : 0;
    } else {
        if (failed) die("%ld records failed while filling the mock cluster", failed);
        rd_kafka_flush(rk, 10000);
        const char *bootstrap = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(rk));
        status = consume(&o, bootstrap, fill.records);
    }
    rd_kafka_destroy(rk);
    free(st.sent_ns);
    free(st.latency_ms);
    return status;
}
