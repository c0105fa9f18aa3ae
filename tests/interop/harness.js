'use strict'
// Node.js twin of harness.py for the kafkajs interop tests.
//
// What it owns: Broker (a real `gregor serve` on a free loopback port with a temporary data
// directory, killed and removed whatever happens), a tiny test registry (test(), runTests()
// printing "ok NAME" / "not ok NAME: reason" and "# " comment lines), and helpers.
// Environment: GREGOR_BIN (default <repo>/build/gregor), GREGOR_ASAN=1 for the sanitizer
// build (timeouts stretched, log checked for sanitizer reports).
const { spawn } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')

const REPO_ROOT = path.resolve(__dirname, '..', '..')
const GREGOR_BIN = process.env.GREGOR_BIN || path.join(REPO_ROOT, 'build', 'gregor')
const ASAN = process.env.GREGOR_ASAN === '1'
const SLOW = ASAN ? 3 : 1
const HOST = '127.0.0.1'
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer',
  'SUMMARY: AddressSanitizer', 'SUMMARY: UndefinedBehaviorSanitizer',
  'WARNING: ThreadSanitizer', 'SUMMARY: ThreadSanitizer']

let tmpRoot = null
function tmpDir (prefix) {
  if (!tmpRoot) tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'gregor-interop-js-'))
  return fs.mkdtempSync(path.join(tmpRoot, prefix + '-'))
}

const liveBrokers = new Set()
let testBrokers = []

function cleanupAll () {
  for (const b of liveBrokers) b.hardKill()
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true })
}
process.on('exit', cleanupAll)
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { cleanupAll(); process.exit(128 + os.constants.signals[sig]) })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Ports picked here are reserved against the other test programs running beside this one,
// with the lock files harness.py uses (PORT_LOCK_DIR: one file per port, the owner's pid).
const PORT_LOCK_DIR = '/tmp/gregor-test-ports'
const reservedPorts = []

function pidAlive (pid) {
  try { process.kill(pid, 0); return true } catch (e) { return e.code === 'EPERM' }
}

function reservePort (port) {
  fs.mkdirSync(PORT_LOCK_DIR, { recursive: true })
  const file = path.join(PORT_LOCK_DIR, String(port))
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' })
      if (reservedPorts.length === 0) {
        process.on('exit', () => { for (const f of reservedPorts) { try { fs.unlinkSync(f) } catch (e) {} } })
      }
      reservedPorts.push(file)
      return true
    } catch (e) {
      let owner = 0
      try { owner = parseInt(fs.readFileSync(file, 'utf8'), 10) || 0 } catch (e2) {}
      if (owner === process.pid) return true
      if (owner && pidAlive(owner)) return false
      try { fs.unlinkSync(file) } catch (e3) {}
    }
  }
  return false
}

// Ports below the kernel's ephemeral range (ip_local_port_range), from 20000: the kernel never
// hands them to an outgoing connection or a listen on port 0, so one picked there stays free
// until the broker binds it (as harness.py's free_port). null when that range is too small.
function portsOutsideEphemeralRange () {
  try {
    const low = parseInt(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0], 10)
    return low - 20000 >= 2000 ? [20000, low - 1] : null
  } catch (e) {
    return null
  }
}

// port (0: the kernel's pick) if it can be bound on HOST right now, else 0.
function bindFree (port) {
  return new Promise(resolve => {
    const srv = net.createServer()
    srv.on('error', () => resolve(0))
    srv.listen(port, HOST, () => {
      const got = srv.address().port
      srv.close(() => resolve(got))
    })
  })
}

async function freePort () {
  const span = portsOutsideEphemeralRange()
  for (let i = 0; i < 100; i++) {
    const want = span ? span[0] + Math.floor(Math.random() * (span[1] - span[0] + 1)) : 0
    const port = await bindFree(want)
    if (port && reservePort(port)) return port
  }
  throw new Error('no free loopback port could be reserved')
}

function canConnect (port) {
  return new Promise(resolve => {
    const s = net.connect({ host: HOST, port })
    const done = ok => { s.destroy(); resolve(ok) }
    s.setTimeout(1000, () => done(false))
    s.on('connect', () => done(true))
    s.on('error', () => done(false))
  })
}

function tail (file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n')
  } catch (e) {
    return `<no log: ${e.message}>`
  }
}

class TestFailure extends Error { get name () { return 'TestFailure' } }
function check (cond, msg) { if (!cond) throw new TestFailure(msg) }

class Broker {
  // props: extra --override KEY=VALUE pairs; listeners and log.dirs are filled in.
  constructor (props = {}, name = 'broker') {
    this.props = { ...props }
    this.name = name
    this.dir = tmpDir(name)
    this.dataDir = this.props['log.dirs'] || path.join(this.dir, 'data')
    this.port = null
    this.proc = null
    this.exit = null
    this.starts = 0
    this.logPath = null
    testBrokers.push(this)
  }

  get bootstrap () { return `${HOST}:${this.port}` }

  async start () {
    check(fs.existsSync(GREGOR_BIN), `broker binary ${GREGOR_BIN} does not exist`)
    if (this.port === null) this.port = await freePort()
    const props = { listeners: `PLAINTEXT://${HOST}:${this.port}`, 'log.dirs': this.dataDir, ...this.props }
    const argv = ['serve']
    for (const [k, v] of Object.entries(props)) argv.push('--override', `${k}=${v}`)
    this.starts += 1
    this.logPath = path.join(this.dir, `broker.${this.starts}.log`)
    const fd = fs.openSync(this.logPath, 'w')
    const t0 = Date.now()
    this.exit = null
    this.proc = spawn(GREGOR_BIN, argv, { stdio: ['ignore', fd, fd], detached: true })
    fs.closeSync(fd)
    liveBrokers.add(this)
    this.exited = new Promise(resolve => {
      this.proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit) })
    })
    const deadline = Date.now() + 10000 * SLOW
    for (;;) {
      if (this.exit) {
        throw new TestFailure(`${this.name} exited (${JSON.stringify(this.exit)}) before accepting connections; log tail:\n${tail(this.logPath)}`)
      }
      if (await canConnect(this.port)) break
      if (Date.now() > deadline) {
        throw new TestFailure(`${this.name} did not accept connections on ${this.port} within ${10 * SLOW}s; log tail:\n${tail(this.logPath)}`)
      }
      await sleep(10)
    }
    this.startupMs = Date.now() - t0
    return this
  }

  running () { return this.proc !== null && this.exit === null }

  // SIGTERM; asserts exit status 0 within 10 s and (ASan) a clean log.
  async stop (timeoutMs = 10000) {
    check(this.proc, `${this.name} is not running`)
    if (this.running()) this.proc.kill('SIGTERM')
    const res = await Promise.race([this.exited, sleep(timeoutMs * SLOW).then(() => null)])
    if (res === null) {
      this.hardKill()
      throw new TestFailure(`${this.name} did not exit within ${timeoutMs * SLOW} ms of SIGTERM; log tail:\n${tail(this.logPath)}`)
    }
    this.proc = null
    liveBrokers.delete(this)
    this.checkLogClean()
    check(res.code === 0, `${this.name} exited with ${JSON.stringify(res)} after SIGTERM (expected status 0); log tail:\n${tail(this.logPath)}`)
  }

  hardKill () {
    if (this.proc && this.exit === null) {
      try { process.kill(-this.proc.pid, 'SIGKILL') } catch (e) {}
    }
    this.proc = null
    liveBrokers.delete(this)
  }

  checkLogClean () {
    if (!ASAN || !this.logPath) return
    for (let i = 1; i <= this.starts; i++) {
      let text = ''
      try { text = fs.readFileSync(path.join(this.dir, `broker.${i}.log`), 'utf8') } catch (e) {}
      for (const m of SANITIZER_MARKERS) {
        const at = text.indexOf(m)
        if (at >= 0) throw new TestFailure(`${this.name} log has a sanitizer report (${m}):\n${text.slice(Math.max(0, at - 200), at + 3000)}`)
      }
    }
  }

  cleanup () {
    this.hardKill()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

// withBroker(props, async b => {...}): starts, runs, stops (asserting a clean exit).
async function withBroker (props, fn) {
  const b = new Broker(props)
  await b.start()
  let ok = false
  try {
    await fn(b)
    ok = true
  } finally {
    if (ok) await b.stop()
    else b.hardKill()
  }
}

function comment (msg) {
  for (const line of String(msg).split('\n')) console.log('# ' + line)
}

const tests = []
function test (name, fn) { tests.push({ name, fn }) }

async function runTests () {
  const wanted = process.argv.slice(2)
  let failed = 0
  for (const { name, fn } of tests) {
    if (wanted.length && !wanted.includes(name)) continue
    testBrokers = []
    const t0 = Date.now()
    try {
      await fn()
      for (const b of testBrokers) b.checkLogClean()
      console.log(`ok ${name}`)
    } catch (e) {
      failed++
      const reason = (e && e.message ? e.message : String(e)).split('\n')[0].slice(0, 300)
      console.log(`not ok ${name}: ${e && e.name ? e.name : 'Error'}: ${reason}`)
      comment(e && e.stack ? e.stack : String(e))
      for (const b of testBrokers) {
        comment(`--- ${b.name} log (${b.logPath}) tail ---`)
        comment(b.logPath ? tail(b.logPath) : '<never started>')
      }
    } finally {
      for (const b of testBrokers) b.cleanup()
      testBrokers = []
    }
    comment(`${name} took ${((Date.now() - t0) / 1000).toFixed(1)}s`)
  }
  process.exit(failed ? 1 : 0) // kafkajs may leave timers behind
}

// kafkajs from the repository's node_modules, with a logCreator that records entries.
function kafkajs () {
  return require(path.join(REPO_ROOT, 'node_modules', 'kafkajs'))
}

function recordingLogCreator (entries) {
  return () => ({ namespace, level, label, log }) => {
    entries.push({ namespace, level, label, message: log.message, log })
  }
}

module.exports = {
  ASAN, Broker, GREGOR_BIN, HOST, REPO_ROOT, SLOW, TestFailure, check, comment, freePort,
  kafkajs, recordingLogCreator, runTests, sleep, tail, test, withBroker
}
