// etcd-load: a closed-loop load generator for any etcd v3 endpoint, written against etcd's
// own Go client (clientv3, Debian's golang-etcd-server-dev), so a benchmark of Flotilla
// against etcd is judged by a client that is neither system's own code. Built by
// bench/etcd-load/build.sh; driven by bench/vs-etcd.ts.
//
//	etcd-load -endpoints A,B,C -op put|range-l|range-s|txn-put|mixed -clients 100 -conns 10 -total 20000
//	etcd-load -op put -sequential -key-offset 40000 -key-size 16 -val-size 1024 -total 10000  (distinct keys)
//
// Connections are spread over the endpoints as etcd clients spread them (connection i talks
// to endpoint i mod N); clients share the connections round-robin and each runs one request
// at a time until the total is reached. It prints one JSON line: the rate of successful
// requests, their latency percentiles, and failed requests by error message.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type options struct {
	endpoints   []string
	op          string
	clients     int
	conns       int
	total       int64
	keySize     int
	valSize     int
	keySpace    int
	sequential  bool
	keyOffset   int64
	rangeKey    string
	readPercent int
	timeout     time.Duration
	dialTimeout time.Duration
}

type report struct {
	Op         string         `json:"op"`
	Total      int64          `json:"total"`
	Succeeded  int            `json:"succeeded"`
	Errors     int            `json:"errors"`
	DurationS  float64        `json:"duration_s"`
	Rps        float64        `json:"rps"`
	P50Ms      float64        `json:"p50_ms"`
	P90Ms      float64        `json:"p90_ms"`
	P99Ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	ErrorKinds map[string]int `json:"error_kinds"`
}

func parseFlags() options {
	var o options
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated host:port list")
	flag.StringVar(&o.op, "op", "put", "put, range-l, range-s, txn-put or mixed")
	flag.IntVar(&o.clients, "clients", 1, "concurrent clients, each one request at a time")
	flag.IntVar(&o.conns, "conns", 1, "gRPC connections, spread over the endpoints")
	flag.Int64Var(&o.total, "total", 10000, "requests in all")
	flag.IntVar(&o.keySize, "key-size", 8, "bytes per key (puts)")
	flag.IntVar(&o.valSize, "val-size", 256, "bytes per value (puts)")
	flag.IntVar(&o.keySpace, "key-space", 100000, "distinct keys the puts choose from at random")
	flag.BoolVar(&o.sequential, "sequential", false, "puts: request n writes key key-offset+n (distinct keys) instead of a random one")
	flag.Int64Var(&o.keyOffset, "key-offset", 0, "-sequential: the number of the first key")
	flag.StringVar(&o.rangeKey, "range-key", "foo", "the key the reads read")
	flag.IntVar(&o.readPercent, "read-percent", 90, "mixed: percent of requests that are linearizable reads")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", 5*time.Second, "connection timeout")
	flag.Parse()
	o.endpoints = strings.Split(endpoints, ",")
	switch o.op {
	case "put", "range-l", "range-s", "txn-put", "mixed":
	default:
		fail("unknown -op %q", o.op)
	}
	if o.clients < 1 || o.conns < 1 || o.total < 1 || o.keySize < 1 || o.keySpace < 1 || o.keyOffset < 0 ||
		o.readPercent < 0 || o.readPercent > 100 {
		fail("-clients, -conns, -total, -key-size and -key-space must be positive; -read-percent in [0, 100]")
	}
	return o
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-load: "+format+"\n", args...)
	os.Exit(2)
}

// request runs request n (from 0) of the workload on cli.
func request(ctx context.Context, o *options, cli *clientv3.Client, rng *rand.Rand, value string, n int64) error {
	key := func() string {
		if o.sequential {
			return fmt.Sprintf("%0*d", o.keySize, o.keyOffset+n)
		}
		return fmt.Sprintf("%0*d", o.keySize, rng.Intn(o.keySpace))[:o.keySize]
	}
	var err error
	switch o.op {
	case "put":
		_, err = cli.Put(ctx, key(), value)
	case "range-l":
		_, err = cli.Get(ctx, o.rangeKey)
	case "range-s":
		_, err = cli.Get(ctx, o.rangeKey, clientv3.WithSerializable())
	case "txn-put":
		_, err = cli.Txn(ctx).Then(clientv3.OpPut(key(), value)).Commit()
	case "mixed":
		if rng.Intn(100) < o.readPercent {
			_, err = cli.Get(ctx, o.rangeKey)
		} else {
			_, err = cli.Put(ctx, key(), value)
		}
	}
	return err
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)) * p)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Microseconds()) / 1000
}

func main() {
	o := parseFlags()
	conns := make([]*clientv3.Client, o.conns)
	for i := range conns {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{o.endpoints[i%len(o.endpoints)]},
			DialTimeout: o.dialTimeout,
		})
		if err != nil {
			fail("connecting to %s: %v", o.endpoints[i%len(o.endpoints)], err)
		}
		defer cli.Close()
		conns[i] = cli
	}
	value := strings.Repeat("v", o.valSize)
	var next int64
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, o.total)
	errorKinds := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < o.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cli := conns[c%len(conns)]
			rng := rand.New(rand.NewSource(int64(c) + 1))
			mine := make([]time.Duration, 0, o.total/int64(o.clients)+1)
			failed := map[string]int{}
			for n := atomic.AddInt64(&next, 1); n <= o.total; n = atomic.AddInt64(&next, 1) {
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				began := time.Now()
				err := request(ctx, &o, cli, rng, value, n-1)
				took := time.Since(began)
				cancel()
				if err != nil {
					failed[err.Error()]++
				} else {
					mine = append(mine, took)
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			for k, n := range failed {
				errorKinds[k] += n
			}
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	errors := 0
	for _, n := range errorKinds {
		errors += n
	}
	r := report{
		Op: o.op, Total: o.total, Succeeded: len(latencies), Errors: errors, DurationS: elapsed,
		Rps: float64(len(latencies)) / elapsed, P50Ms: percentile(latencies, 0.50),
		P90Ms: percentile(latencies, 0.90), P99Ms: percentile(latencies, 0.99),
		MaxMs: percentile(latencies, 1), ErrorKinds: errorKinds,
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}
