'use strict'
// kafkajs (2.2.4) with a SCRAM user from the metadata log: the user is created with
// `gregor user add`, then a kafkajs producer on a SASL_PLAINTEXT listener (SCRAM-SHA-512)
// keeps producing across several session lifetimes (connections.max.reauth.ms): kafkajs
// implements KIP-368, so it re-authenticates in-band on the same connection, which the broker
// logs, and the broker never has to close an expired session. A second test: kafkajs with a
// SCRAM-SHA-256 user on a SASL_SSL listener (certificates made with the openssl CLI), and a
// wrong password refused.
const { spawnSync } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const { Broker, GREGOR_BIN, HOST, SLOW, check, comment, freePort, kafkajs, recordingLogCreator, runTests, sleep, test } =
  require('./harness.js')

function openssl (args) {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30000 })
  check(r.status === 0, `openssl ${args.join(' ')}: ${r.stderr}`)
}

// A CA and a server certificate for 127.0.0.1 (SAN IP); the keystore is key + certificate.
function makeCerts () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gregor-js-certs-'))
  const p = n => path.join(dir, n)
  for (const n of ['ca', 'server']) {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(n + '.key')])
  }
  openssl(['req', '-x509', '-new', '-key', p('ca.key'), '-subj', '/CN=Gregor JS CA', '-days', '2', '-out', p('ca.crt')])
  openssl(['req', '-new', '-key', p('server.key'), '-subj', '/CN=localhost', '-out', p('server.csr')])
  fs.writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', p('server.ext'), '-out', p('server.crt')])
  fs.writeFileSync(p('keystore.pem'), fs.readFileSync(p('server.key')) + fs.readFileSync(p('server.crt')))
  return { dir, ca: p('ca.crt'), keystore: p('keystore.pem') }
}

// Broker.start() waits for the first (PLAINTEXT) listener only.
async function waitPort (port) {
  const deadline = Date.now() + 10000 * SLOW
  for (;;) {
    const ok = await new Promise(resolve => {
      const sock = net.connect({ host: HOST, port })
      sock.on('connect', () => { sock.destroy(); resolve(true) })
      sock.on('error', () => resolve(false))
    })
    if (ok) return
    check(Date.now() < deadline, `port ${port} not accepting`)
    await sleep(20)
  }
}

function gregorUser (b, args) {
  const r = spawnSync(GREGOR_BIN, ['user', ...args, '-b', b.bootstrap], { encoding: 'utf8', timeout: 30000 * SLOW })
  check(r.status === 0, `gregor user ${args.join(' ')}: ${r.status} ${r.stderr}`)
}

const REAUTH_MS = 3000

test('kafkajs_reauthenticates_a_metadata_log_scram_user', async () => {
  const b = new Broker({
    'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
    'connections.max.reauth.ms': String(REAUTH_MS),
    'log.level': 'debug'
  }, 'kafkajs-scram')
  b.port = await freePort()
  const saslPort = await freePort()
  b.props.listeners = `PLAINTEXT://${HOST}:${b.port},SASL_PLAINTEXT://${HOST}:${saslPort}`
  b.props['listener.security.protocol.map'] = 'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT'
  await b.start()
  try {
    await waitPort(saslPort)
    const add = spawnSync(GREGOR_BIN, ['user', 'add', 'ivy', '--password', 'ivy-pw', '-b', b.bootstrap],
      { encoding: 'utf8', timeout: 30000 * SLOW })
    check(add.status === 0, `gregor user add: ${add.status} ${add.stderr}`)
    const { Kafka, logLevel } = kafkajs()
    const logs = []
    const kafka = new Kafka({
      clientId: 'gregor-interop',
      brokers: [`${HOST}:${saslPort}`],
      sasl: { mechanism: 'scram-sha-512', username: 'ivy', password: 'ivy-pw' },
      reauthenticationThreshold: 1500,
      connectionTimeout: 10000 * SLOW,
      requestTimeout: 30000 * SLOW,
      retry: { retries: 2 },
      logLevel: logLevel.WARN,
      logCreator: recordingLogCreator(logs)
    })
    const producer = kafka.producer({ allowAutoTopicCreation: true })
    await producer.connect()
    try {
      const t0 = Date.now()
      let sent = 0
      while (Date.now() - t0 < 2.5 * REAUTH_MS) {
        await producer.send({ topic: 'kafkajs-scram', messages: [{ value: `v${sent}` }] })
        sent++
        await sleep(250)
      }
      comment(`${sent} sends over ${Date.now() - t0} ms`)
    } finally {
      await producer.disconnect()
    }
    const errors = logs.filter(l => l.level === logLevel.ERROR)
    check(errors.length === 0, `kafkajs errors: ${JSON.stringify(errors)}`)
    const log = fs.readFileSync(b.logPath, 'utf8')
    const reauths = (log.match(/re-authenticated as User:ivy/g) || []).length
    check(reauths >= 2, `kafkajs re-authenticated ${reauths} times in 2.5 session lifetimes`)
    check(!log.includes('expired (connections.max.reauth.ms)'), 'the broker had to close an expired session')
  } finally {
    await b.stop()
    b.cleanup()
  }
})

test('kafkajs_scram_sha_256_over_sasl_ssl', async () => {
  const certs = makeCerts()
  const b = new Broker({
    'sasl.enabled.mechanisms': 'SCRAM-SHA-256',
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': certs.keystore
  }, 'kafkajs-scram-ssl')
  b.port = await freePort()
  const sslPort = await freePort()
  b.props.listeners = `PLAINTEXT://${HOST}:${b.port},SASL_SSL://${HOST}:${sslPort}`
  b.props['listener.security.protocol.map'] = 'PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL'
  await b.start()
  try {
    await waitPort(sslPort)
    gregorUser(b, ['add', 'jo', '--password', 'jo-pw', '--mechanism', 'SCRAM-SHA-256', '--iterations', '8192'])
    const { Kafka, logLevel } = kafkajs()
    const connect = async password => {
      const logs = []
      const kafka = new Kafka({
        clientId: 'gregor-interop',
        brokers: [`${HOST}:${sslPort}`],
        ssl: { ca: [fs.readFileSync(certs.ca, 'utf8')] },
        sasl: { mechanism: 'scram-sha-256', username: 'jo', password },
        connectionTimeout: 10000 * SLOW,
        requestTimeout: 30000 * SLOW,
        retry: { retries: 0 },
        logLevel: logLevel.NOTHING,
        logCreator: recordingLogCreator(logs)
      })
      const producer = kafka.producer({ allowAutoTopicCreation: true })
      await producer.connect()
      return producer
    }
    const producer = await connect('jo-pw')
    try {
      const res = await producer.send({ topic: 'kafkajs-ssl', messages: [{ value: 'a' }, { value: 'b' }] })
      check(res.length === 1 && res[0].errorCode === 0, `send: ${JSON.stringify(res)}`)
    } finally {
      await producer.disconnect()
    }
    let refused = null
    try {
      const p = await connect('wrong')
      await p.disconnect()
    } catch (e) {
      refused = e
    }
    check(refused && /SASL|uthentication/.test(String(refused.message)), `wrong password: ${refused}`)
  } finally {
    await b.stop()
    b.cleanup()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

runTests()
