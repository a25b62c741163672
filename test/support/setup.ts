// Decorator metadata (NestJS DI, class-validator, class-transformer) needs the Reflect polyfill loaded first.
import 'reflect-metadata';
