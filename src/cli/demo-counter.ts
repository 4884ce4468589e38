/**
 * Scenario (f) of `flotilla demo`: a counter incremented concurrently through every node by
 * exactly-once compare-and-swap transactions, which must end exact.
 */
import {
  call,
  DEMO_COUNTER_INCREMENTS,
  type DemoCluster,
  type DemoNode,
  sleep,
  until,
  WAIT_MS,
} from './demo-cluster.js';

/**
 * (f) A counter incremented concurrently through every node by compare-and-swap
 * transactions ends exact.
 */
export async function counter(demo: DemoCluster): Promise<void> {
  demo.scenario(
    'f',
    `a counter incremented concurrently through every node (${DEMO_COUNTER_INCREMENTS} each, compare-and-swap)`,
  );
  const key = 'counter/value';
  const writers = demo.up();
  if (!demo.check(await demo.put(writers[0]!, key, '0'), `PUT ${key}=0`)) return;
  const started = Date.now();
  const outcomes = await Promise.all(writers.map((n) => incrementMany(n, key)));
  const total = writers.length * DEMO_COUNTER_INCREMENTS;
  const done = outcomes.reduce((s, o) => s + o.done, 0);
  const conflicts = outcomes.reduce((s, o) => s + o.conflicts, 0);
  demo.check(
    done === total,
    `${done}/${total} increments committed from ${writers.length} nodes in ${Date.now() - started} ms (${conflicts} compare failures retried)`,
  );
  const finals = await Promise.all(
    writers.map((n) =>
      until(WAIT_MS, async () => {
        const r = await call(n.info.clientUrl, 'GET', `/v1/kv/${key}?consistency=serializable`);
        return r.status === 200 && r.body.value === String(total) ? r.body.value : undefined;
      }),
    ),
  );
  const linear = await call(writers[0]!.info.clientUrl, 'GET', `/v1/kv/${key}`);
  demo.check(
    finals.every((v) => v === String(total)) && linear.body.value === String(total),
    `final value ${linear.body.value ?? '?'} == ${total} (linearizable), and on every node once applied`,
  );
}

/**
 * `DEMO_COUNTER_INCREMENTS` exactly-once increments through `node`: each is a transaction
 * "if counter == v and my op key does not exist, then counter = v+1 and create my op key,
 * else return both", so a retry after an unknown outcome can never count twice.
 */
async function incrementMany(node: DemoNode, key: string): Promise<{ done: number; conflicts: number }> {
  let done = 0;
  let conflicts = 0;
  let current: string | undefined;
  for (let i = 0; i < DEMO_COUNTER_INCREMENTS; i++) {
    const opKey = `counter/ops/${node.info.name}-${i}`;
    const ok = await until(WAIT_MS * 2, async () => {
      if (current === undefined) {
        const r = await call(node.info.clientUrl, 'GET', `/v1/kv/${key}`);
        if (r.status !== 200 || r.body.value === undefined) return undefined;
        current = r.body.value;
      }
      const reply = await call(
        node.info.clientUrl,
        'POST',
        '/v1/txn',
        {
          compare: [
            { key, target: 'VALUE', result: 'EQUAL', value: current },
            { key: opKey, target: 'VERSION', result: 'EQUAL', value: 0 },
          ],
          success: [
            { put: { key, value: String(Number(current) + 1) } },
            { put: { key: opKey, value: '1' } },
          ],
          failure: [{ get: { key } }, { get: { key: opKey } }],
        },
        6000,
      );
      if (reply.status !== 200) {
        current = undefined; // unknown outcome or no leader: re-read and let the op key decide
        await sleep(50);
        return undefined;
      }
      if (reply.body.succeeded === true) {
        current = String(Number(current) + 1);
        return true;
      }
      const [counterGet, opGet] = reply.body.responses ?? [];
      if ((opGet?.get?.kvs.length ?? 0) > 0) return true; // an earlier attempt did commit
      conflicts++;
      current = counterGet?.get?.kvs[0]?.value;
      await sleep(Math.random() * 10);
      return undefined;
    });
    if (ok === true) done++;
  }
  return { done, conflicts };
}
