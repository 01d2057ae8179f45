// Scenario j: an ordinary express application, written as one is without
// handover (CommonJS, the common middlewares from npm, a few routes, a JSON
// API). The bench starts it both as `node express-app.cjs` (a cold start)
// and as `node --import handover/register express-app.cjs` (the no-code-
// change path), and upgrades the latter with SIGHUP. PORT picks the port;
// the "listening on" line tells the bench the port accepts, without polling.
const express = require('express')
const helmet = require('helmet')
const cors = require('cors')
const compression = require('compression')
const cookieParser = require('cookie-parser')
const morgan = require('morgan')
const { rateLimit } = require('express-rate-limit')

const users = new Map([
  [1, { id: 1, name: 'Ada', email: 'ada@example.org' }],
  [2, { id: 2, name: 'Grace', email: 'grace@example.org' }],
])

const api = express.Router()
api.get('/users', (req, res) => res.json([...users.values()]))
api.get('/users/:id', (req, res, next) => {
  const user = users.get(Number(req.params.id))
  if (!user) return next()
  res.json(user)
})
api.post('/users', (req, res) => {
  const { name, email } = req.body ?? {}
  if (typeof name !== 'string' || typeof email !== 'string') return res.status(400).json({ error: 'name and email are required' })
  const user = { id: users.size + 1, name, email }
  users.set(user.id, user)
  res.status(201).json(user)
})

const app = express()
app.use(helmet())
app.use(cors({ origin: ['https://app.example.org'], credentials: true }))
app.use(compression())
app.use(morgan('tiny'))
app.use(cookieParser())
app.use(express.json({ limit: '100kb' }))
app.use(rateLimit({ windowMs: 60_000, limit: 1000, standardHeaders: 'draft-8', legacyHeaders: false }))
app.get('/health', (req, res) => res.json({ ok: true, pid: process.pid, session: req.cookies.session ?? null }))
app.use('/api', api)
app.use((req, res) => res.status(404).json({ error: 'not found' }))
app.use((err, req, res, next) => res.status(err.status ?? 500).json({ error: err.message }))

const port = Number(process.env.PORT)
const server = app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port} (pid ${process.pid})`))
// A graceful stop, as most apps have one (and a normal exit, which is when
// node writes NODE_COMPILE_CACHE out).
process.on('SIGTERM', () => server.close(() => process.exit(0)))
