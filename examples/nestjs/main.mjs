// main.mjs: a NestJS app under handover/register (PORT=8080 by default).
// Plain JavaScript, so the decorators are applied as functions.
import 'reflect-metadata'
import { Controller, Get, Injectable, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'

class AppController {
  hello() {
    return `hello from ${process.pid}\n`
  }
}
Get()(AppController.prototype, 'hello', Object.getOwnPropertyDescriptor(AppController.prototype, 'hello'))
Controller()(AppController)

class Lifecycle {
  onApplicationShutdown(signal) {
    console.error(`app shutdown ${process.pid} ${signal}`)
  }
}
Injectable()(Lifecycle)

class AppModule {}
Module({ controllers: [AppController], providers: [Lifecycle] })(AppModule)

const app = await NestFactory.create(AppModule, { logger: false })
// Only the stop signals: Nest's default list also has SIGHUP and SIGUSR2,
// and would close the app at every upgrade.
app.enableShutdownHooks(process.env.NEST_ALL_SIGNALS ? undefined : ['SIGTERM', 'SIGINT'])
await app.listen(Number(process.env.PORT) || 8080)
console.error(`listening ${process.pid}`)
