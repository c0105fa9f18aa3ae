'use strict'
// A consumer-group member for test_kip848.js, run as its own process so a test can SIGKILL it.
// argv: bootstrap group topics(comma list, or /regex/ with a leading ^) protocol(consumer|classic|
// cooperative) [instanceId] [autoCommit 0|1]. Writes one JSON line per event to stdout:
// {ev:'msg',t,topic,p,off} for each message, {ev:'assign',t,parts:[..]} when the assignment
// changes, {ev:'ready'} once subscribed. Without autoCommit a record is reported once its commit
// was answered. On SIGTERM it finishes the batch it holds and leaves the group.
const path = require('path')
const { KafkaClient } = require(path.join(__dirname, '..', '..', 'node_modules', 'kafka-crab-js', 'dist', 'index.cjs'))

const [bootstrap, group, topics, protocol, instanceId, autoCommit] = process.argv.slice(2)
const out = o => process.stdout.write(JSON.stringify(o) + '\n')

async function main () {
  const cfg = {
    'auto.offset.reset': 'earliest',
    'topic.metadata.refresh.interval.ms': '1000',
    ...(process.env.KIP848_DEBUG ? { debug: process.env.KIP848_DEBUG } : {})
  }
  if (protocol === 'consumer') {
    cfg['group.protocol'] = 'consumer'
  } else {
    cfg['group.protocol'] = 'classic'
    cfg['session.timeout.ms'] = '6000'
    cfg['heartbeat.interval.ms'] = '500'
    cfg['partition.assignment.strategy'] = protocol === 'cooperative' ? 'cooperative-sticky' : 'range'
  }
  if (instanceId && instanceId !== '-') cfg['group.instance.id'] = instanceId
  if (autoCommit === '1') cfg['auto.commit.interval.ms'] = '200'
  const client = new KafkaClient({ brokers: bootstrap, clientId: `kip848-${process.pid}`, logLevel: process.env.KIP848_DEBUG ? 'debug' : 'error' })
  const consumer = client.createConsumer({ groupId: group, enableAutoCommit: autoCommit === '1', configuration: cfg })
  let last = ''
  const report = () => {
    const parts = []
    for (const tp of consumer.assignment()) for (const po of tp.partitionOffset) parts.push(`${tp.topic}:${po.partition}`)
    parts.sort()
    const key = parts.join(',')
    if (key !== last) { last = key; out({ ev: 'assign', t: Date.now(), parts }) }
  }
  consumer.onEvents(() => report())
  await consumer.subscribe(topics.split(',').map(t => ({ topic: t })))
  out({ ev: 'ready', t: Date.now() })
  let stopping = false
  // SIGTERM only asks the loop to stop: it finishes committing the batch it holds, so every
  // record it reported is committed before the member leaves (a record reported but not yet
  // committed would be read again by the member that takes its partition over).
  process.on('SIGTERM', () => {
    stopping = true
    setTimeout(() => { out({ ev: 'error', msg: 'did not stop within 10 s' }); process.exit(3) }, 10000).unref()
  })
  const timer = setInterval(report, 100)
  while (!stopping) {
    let batch
    try {
      batch = await consumer.recvBatch(100, 10)
    } catch (e) {
      if (stopping) break // leaving below
      // The broker went away (a test restarts it): librdkafka reconnects by itself.
      if (/BrokerTransportFailure|AllBrokersDown/.test(String(e && e.message))) {
        out({ ev: 'transport_error', t: Date.now() })
        await new Promise(resolve => setTimeout(resolve, 100))
        continue
      }
      throw e
    }
    report()
    const msg = m => out({ ev: 'msg', t: Date.now(), topic: m.topic, p: m.partition, off: m.offset })
    if (autoCommit !== '1' && batch && batch.length) {
      // A record is reported once its commit was answered. A commit racing an epoch bump gets
      // STALE_MEMBER_EPOCH (as from Kafka); the next message's commit covers it.
      for (const m of batch) {
        try { await consumer.commitMessage(m, 'Sync') } catch (e) { out({ ev: 'commit_error', msg: String(e.message || e) }) }
        msg(m)
      }
    } else {
      for (const m of batch || []) msg(m)
    }
  }
  clearInterval(timer)
  // kafka-crab-js's disconnect() drops the consumer without librdkafka's leave; unsubscribe()
  // leaves the group (a heartbeat with epoch -1, or LeaveGroup), then we disconnect.
  try { consumer.unsubscribe() } catch (e) {}
  await new Promise(resolve => setTimeout(resolve, 500))
  try { await consumer.disconnect() } catch (e) {}
  out({ ev: 'left', t: Date.now() })
  process.exit(0)
}
main().catch(e => { out({ ev: 'error', msg: String(e && e.message ? e.message : e) }); process.exit(2) })
