// A minimal Lambda runtime for Node.js, in the manner of AWS's runtime
// interface client (aws-lambda-ric): it loads the handler named by _HANDLER
// ("file.export", the file relative to LAMBDA_TASK_ROOT), asks the Runtime
// API for work in a loop, and posts each result or error. A handler that
// does not exist is reported to /runtime/init/error as
// Runtime.HandlerNotFound, and the process exits 129, as the RIC does.
'use strict';

const http = require('http');
const path = require('path');

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime';

function call(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: base + url, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorDocument(err, type) {
  return {
    errorType: type || (err && err.name) || 'Error',
    errorMessage: (err && err.message) || String(err),
    trace: err && err.stack ? String(err.stack).split('\n') : [],
  };
}

function postError(url, doc) {
  return call('POST', url, JSON.stringify(doc), {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Function-Error-Type': doc.errorType,
  });
}

function loadHandler() {
  const spec = process.env._HANDLER || '';
  const dot = spec.lastIndexOf('.');
  const file = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  let mod;
  try {
    mod = require(path.join(process.env.LAMBDA_TASK_ROOT, file));
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND') {
      const err = new Error(`Cannot find module '${file}'`);
      err.name = 'Runtime.ImportModuleError';
      throw err;
    }
    throw e;
  }
  if (typeof mod[name] !== 'function') {
    const err = new Error(`${spec} is undefined or not exported`);
    err.name = 'Runtime.HandlerNotFound';
    throw err;
  }
  return mod[name];
}

async function main() {
  let handler;
  try {
    handler = loadHandler();
  } catch (e) {
    const doc = errorDocument(e, e.name);
    console.error(`ERROR\tUncaught Exception\t${JSON.stringify(doc)}`);
    await postError('/init/error', doc);
    process.exit(129);
  }
  for (;;) {
    const next = await call('GET', '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    const context = {
      awsRequestId: id,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    let result;
    try {
      result = await handler(JSON.parse(next.body), context);
    } catch (e) {
      const doc = errorDocument(e);
      console.error(`${new Date().toISOString()}\t${id}\tERROR\tInvoke Error \t${JSON.stringify(doc)}`);
      await postError(`/invocation/${id}/error`, doc);
      continue;
    }
    await call('POST', `/invocation/${id}/response`, JSON.stringify(result === undefined ? null : result),
      { 'Content-Type': 'application/json' });
  }
}

main();
