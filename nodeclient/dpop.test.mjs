// Interop test: panva's dpop package (an RFC 9449 client) against the jwtauth demo.
//
// The demo is built from ../cmd/jwtauth-demo (a Go module of its own), started on a free
// port of 127.0.0.1 and stopped (SIGTERM) at the end. Every request goes through Node's
// global fetch, which sends no Origin and no Sec-Fetch-Site, so the demo answers as to
// an app: the tokens are in the JSON body. Each step prints its status line, so that CI
// logs show what the server answered.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop'

const demoDir = fileURLToPath(new URL('../cmd/jwtauth-demo/', import.meta.url))
// A fixed secret, so that the demo does not warn about a random one.
const secret = 'c4'.repeat(32)
const listeningLine = /listening on http:\/\/(\S+) \(pid \d+;/

let base // http://127.0.0.1:PORT
let demo // the demo's process
let workDir
const demoStderr = []
const accessLog = []
let failed = false

// startDemo builds the demo and starts it, once: the first test to run calls it, and
// a failure is reported in full by that test and in one line by the others.
let starting
function startDemo() {
  starting ??= buildAndStart()
  return starting
}

async function buildAndStart() {
  workDir = await mkdtemp(join(tmpdir(), 'jwtauth-nodeclient-'))
  const bin = join(workDir, 'jwtauth-demo')
  try {
    await promisify(execFile)('go', ['build', '-o', bin, '.'], { cwd: demoDir, maxBuffer: 16 << 20, timeout: 300_000 })
  } catch (err) {
    // err.message is "Command failed: go build ..." and go's output.
    throw new Error(`go build in cmd/jwtauth-demo failed: ${err.message}`)
  }

  demo = spawn(bin, ['-addr', '127.0.0.1:0', '-secret', secret], { stdio: ['ignore', 'pipe', 'pipe'] })
  process.on('exit', () => demo.kill('SIGKILL')) // never leave it behind
  // The access log must be read, or the demo blocks once the pipe is full.
  createInterface({ input: demo.stdout }).on('line', (line) => accessLog.push(line))
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo printed no listening line in 30 s:\n${demoStderr.join('\n')}`)), 30_000)
    createInterface({ input: demo.stderr }).on('line', (line) => {
      demoStderr.push(line)
      const m = listeningLine.exec(line)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    demo.on('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited (${code ?? signal}) before it listened:\n${demoStderr.join('\n')}`))
    })
  })
  base = `http://${addr}`
  console.log(`demo listening on ${base} (pid ${demo.pid})`)
}

after(async () => {
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    const exited = new Promise((resolve) => demo.once('exit', resolve))
    demo.kill('SIGTERM')
    const timer = setTimeout(() => demo.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
  if (failed) {
    console.log(`the demo's access log:\n${accessLog.join('\n')}`)
    console.log(`the demo's stderr:\n${demoStderr.join('\n')}`)
  }
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

// step is a test that needs the demo. It remembers a failure, so that after() prints the
// demo's logs.
function step(name, fn) {
  test(name, async (t) => {
    try {
      await startDemo()
    } catch (err) {
      failed = true
      if (startReported) throw new Error('the demo did not start: see the first test')
      startReported = true
      throw err
    }
    try {
      await fn(t)
    } catch (err) {
      failed = true
      throw err
    }
  })
}
let startReported = false

// request sends one request to the demo: headers as given (authorization, dpop), a JSON
// body when one is given. It answers the status, the headers and the parsed JSON body.
async function request(method, path, { authorization, dpop, json } = {}) {
  const headers = {}
  if (authorization) headers.Authorization = authorization
  if (dpop) headers.DPoP = dpop
  let body
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(json)
  }
  const res = await fetch(base + path, { method, headers, body })
  const text = await res.text()
  let parsed
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = text
  }
  return { status: res.status, headers: res.headers, body: parsed }
}

// proof is a DPoP proof by keypair for the request method path (htu is the full URL,
// without query), bound to accessToken when one is given (the ath claim).
function proof(keypair, method, path, accessToken) {
  return generateProof(keypair, base + path, method, undefined, accessToken)
}

// claims decodes the payload of a JWT (not verified: the test only reads it).
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))
}

const alice = { username: 'alice', password: 'wonderland' }

// login logs alice in, bound to keypair when one is given (a DPoP proof for POST /auth),
// and returns the tokens.
async function login(keypair) {
  const dpop = keypair ? await proof(keypair, 'POST', '/auth') : undefined
  const res = await request('POST', '/auth', { dpop, json: alice })
  assert.equal(res.status, 200, `login: ${res.status} ${JSON.stringify(res.body)}`)
  assert.equal(typeof res.body?.access_token, 'string', 'the login answer has an access_token in its body')
  assert.equal(typeof res.body?.refresh_token, 'string', 'the login answer has a refresh_token in its body')
  return { at: res.body.access_token, rt: res.body.refresh_token }
}

// refused asserts a 401 whose WWW-Authenticate is a DPoP challenge, and prints it.
function refused(label, res) {
  const challenge = res.headers.get('www-authenticate')
  console.log(`${label}: ${res.status} ${challenge ?? '(no WWW-Authenticate)'}`)
  assert.equal(res.status, 401, `${label}: want 401, got ${res.status} ${JSON.stringify(res.body)}`)
  assert.ok(challenge?.startsWith('DPoP'), `${label}: WWW-Authenticate ${JSON.stringify(challenge)} does not start with DPoP`)
}

// ok asserts the status and prints the step's line.
function ok(label, res, want, note = '') {
  console.log(`${label}: ${res.status}${note}`)
  assert.equal(res.status, want, `${label}: want ${want}, got ${res.status} ${JSON.stringify(res.body)} (WWW-Authenticate: ${res.headers.get('www-authenticate')})`)
}

// orders calls GET /api/orders with the bound access token and a fresh proof for it.
async function orders(keypair, at) {
  return request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop: await proof(keypair, 'GET', '/api/orders', at) })
}

// refresh calls POST /auth/refresh with the bound tokens and the given proof.
function refresh({ at, rt }, dpop) {
  return request('POST', '/auth/refresh', { authorization: `DPoP ${at}`, dpop, json: { refresh_token: rt } })
}

step('unbound login still works with Bearer, and its token has no cnf', async () => {
  const { at } = await login()
  assert.equal(claims(at).cnf, undefined, 'an unbound token has no cnf claim')
  const res = await request('GET', '/api/orders', { authorization: `Bearer ${at}` })
  ok('unbound login, Bearer GET /api/orders', res, 200, ', no cnf')
})

step('bound login: cnf.jkt is the thumbprint of the client key', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  const jkt = await calculateThumbprint(keypair.publicKey)
  const cnf = claims(at).cnf
  console.log(`login bound: 200, cnf ${JSON.stringify(cnf)}, thumbprint ${jkt}`)
  assert.equal(cnf?.jkt, jkt, 'the access token is bound to the key of the login proof')
  console.log('login bound: 200, cnf.jkt matches')
})

step('bound token with a proof (ath) on GET /api/orders: 200', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  ok('DPoP GET /api/orders', await orders(keypair, at), 200)
})

step('refused: the bound token sent as Bearer (downgrade), even with a valid proof', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  const res = await request('GET', '/api/orders', { authorization: `Bearer ${at}`, dpop: await proof(keypair, 'GET', '/api/orders', at) })
  refused('bearer downgrade', res)
  // And as Bearer without any proof, as a thief of the token alone would send it.
  refused('bearer downgrade, no proof', await request('GET', '/api/orders', { authorization: `Bearer ${at}` }))
})

step('refused: Authorization DPoP without a DPoP header', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  refused('no DPoP header', await request('GET', '/api/orders', { authorization: `DPoP ${at}` }))
})

step('refused: a proof made by another key pair', async () => {
  const keypair = await generateKeyPair('ES256')
  const other = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  const res = await request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop: await proof(other, 'GET', '/api/orders', at) })
  refused('proof by another key', res)
})

step('refused: the same proof sent a second time (replay)', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  const dpop = await proof(keypair, 'GET', '/api/orders', at)
  ok('first use of a proof', await request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop }), 200)
  refused('replayed proof', await request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop }))
})

step('refused: a proof for another htu or another method', async () => {
  const keypair = await generateKeyPair('ES256')
  const { at } = await login(keypair)
  const otherPath = await proof(keypair, 'GET', '/api/ping/protected', at)
  refused('proof for another htu', await request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop: otherPath }))
  const otherMethod = await proof(keypair, 'POST', '/api/orders', at)
  refused('proof for another method', await request('GET', '/api/orders', { authorization: `DPoP ${at}`, dpop: otherMethod }))
})

step('refresh: a bound refresh rotates both tokens, keeps cnf.jkt, and the new token works', async () => {
  const keypair = await generateKeyPair('ES256')
  const jkt = await calculateThumbprint(keypair.publicKey)
  const tokens = await login(keypair)
  const res = await refresh(tokens, await proof(keypair, 'POST', '/auth/refresh', tokens.at))
  ok('DPoP refresh', res, 200)
  const next = { at: res.body.access_token, rt: res.body.refresh_token }
  assert.equal(typeof next.at, 'string', 'the refresh answer has an access_token')
  assert.equal(typeof next.rt, 'string', 'the refresh answer has a refresh_token')
  assert.notEqual(next.at, tokens.at, 'a new access token')
  assert.notEqual(next.rt, tokens.rt, 'a new refresh token')
  assert.equal(claims(next.at).cnf?.jkt, jkt, 'the new access token is bound to the same key')
  console.log('refreshed token: cnf.jkt matches')
  ok('refreshed token, DPoP GET /api/orders', await orders(keypair, next.at), 200)
})

step('refused refreshes end nothing: no proof, another key, a replayed proof; then a proper refresh still works', async () => {
  const keypair = await generateKeyPair('ES256')
  const other = await generateKeyPair('ES256')
  const first = await login(keypair)
  // A proper refresh, whose proof is replayed below.
  const used = await proof(keypair, 'POST', '/auth/refresh', first.at)
  const res = await refresh(first, used)
  ok('DPoP refresh (its proof is replayed below)', res, 200)
  const current = { at: res.body.access_token, rt: res.body.refresh_token }

  refused('refresh without a DPoP header', await request('POST', '/auth/refresh', { authorization: `DPoP ${current.at}`, json: { refresh_token: current.rt } }))
  refused('refresh with a proof by another key', await refresh(current, await proof(other, 'POST', '/auth/refresh', current.at)))
  // The very request sent above, proof and all: inside the reuse interval it would get
  // the same successor again, were the proof not refused as a replay.
  refused('refresh replaying a used proof', await refresh(first, used))

  const good = await refresh(current, await proof(keypair, 'POST', '/auth/refresh', current.at))
  ok('proper refresh after the refused ones', good, 200)
  ok('its token, DPoP GET /api/orders', await orders(keypair, good.body.access_token), 200)
})

step('logout with a proof: 204, and then the refresh token is refused', async () => {
  const keypair = await generateKeyPair('ES256')
  const tokens = await login(keypair)
  const out = await request('POST', '/auth/logout', { authorization: `DPoP ${tokens.at}`, dpop: await proof(keypair, 'POST', '/auth/logout', tokens.at) })
  ok('DPoP logout', out, 204)
  const res = await refresh(tokens, await proof(keypair, 'POST', '/auth/refresh', tokens.at))
  console.log(`refresh after logout: ${res.status} ${res.headers.get('www-authenticate') ?? ''}`)
  assert.equal(res.status, 401, `refresh after logout: want 401, got ${res.status} ${JSON.stringify(res.body)}`)
})
