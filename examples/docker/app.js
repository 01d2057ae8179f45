// app.js: the container's app, which knows nothing of handover (PORT=8080 by default).
const http = require('node:http')

http.createServer((req, res) => res.end(`hello from ${process.pid}\n`)).listen(Number(process.env.PORT) || 8080)
