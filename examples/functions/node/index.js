// The handler the Node runtime (runtime.js) runs by default
// (_HANDLER=index.handler). Like examples/functions/lastword, it writes a
// line to stdout and one to stderr naming its request id right before it
// returns, and answers with the request id.
'use strict';

exports.handler = async (event, context) => {
  console.log(`lastword stdout ${context.awsRequestId}`);
  console.error(`lastword stderr ${context.awsRequestId}`);
  return context.awsRequestId;
};
