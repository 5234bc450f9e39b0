// An integrator's first session against aiq-sandbox, written with Node's `soap` package (not zeep),
// its client built from AccountsIQ's published WSDL: authenticate, create a customer, post a batch
// invoice, look it up by external reference, and get one refusal in-band and one as a SOAP Fault.
//
//   node scenario.js < config.json      (config: see tests/test_second_soap_stack.py)
//
// Prints one JSON object with what each step answered.
"use strict";

const soap = require("soap");

function readAll(stream) {
  return new Promise((resolve) => {
    let text = "";
    stream.on("data", (chunk) => (text += chunk));
    stream.on("end", () => resolve(text));
  });
}

// The port the client binds to: Integration_1_1Soap or Integration_1_1Soap12 (and 2.0's).
function port(client, config) {
  const service = Object.keys(client.wsdl.definitions.services)[0];
  return client[service][`Integration_${config.version.replace(".", "_")}Soap${config.soap12 ? "12" : ""}`];
}

function call(client, target, operation, args) {
  return new Promise((resolve, reject) => {
    target[operation](args, (error, result, rawResponse) => {
      if (error) {
        const fault = error.root && error.root.Envelope && error.root.Envelope.Body.Fault;
        return fault ? resolve({ fault, status: error.response && error.response.status }) : reject(error);
      }
      resolve(result);
    });
  });
}

async function main() {
  const config = JSON.parse(await readAll(process.stdin));
  const client = await soap.createClientAsync(config.wsdl, {
    endpoint: config.url,
    forceSoap12Headers: config.soap12,
  });
  const target = port(client, config);
  const out = { version: config.version, soap12: config.soap12 };
  const session = {};

  if (config.version === "1.1") {
    const login = await call(client, target, "Login", {
      companyID: config.company, partnerKey: config.partnerKey, userKey: config.userKey,
    });
    out.authenticated = Boolean(login.LoginResult);
    session.token = login.LoginResult;
  } else {
    const token = await call(client, target, "TokenGet", {
      clientId: config.clientId, clientSecret: config.clientSecret,
    });
    out.authenticated = token.TokenGetResult.Status === "Success";
    client.addSoapHeader(
      `<AiqSoapHeader xmlns="${config.namespace}"><Entity>${config.company}</Entity>` +
        `<AccessToken>${token.TokenGetResult.Result.AccessToken}</AccessToken></AiqSoapHeader>`
    );
  }
  const withToken = (args) => (session.token ? { token: session.token, ...args } : args);

  const shell = await call(client, target, "GetNewCustomerFromDefaults", withToken({}));
  // node-soap reads the shell's CreationDate (.NET's 0001-01-01) back as an empty element, which
  // .NET cannot read; integrators send the date they create the customer on.
  const customer = {
    ...shell.GetNewCustomerFromDefaultsResult.Result,
    Code: config.customerCode,
    Name: "Node Client Ltd",
    CreationDate: "2026-11-02T00:00:00",
  };
  const saved = await call(client, target, "UpdateCustomer", withToken({ customer, create: true }));
  if (!saved.UpdateCustomerResult) throw new Error("UpdateCustomer: " + JSON.stringify(saved) + client.lastRequest);
  out.customer = saved.UpdateCustomerResult.Status;
  const read = await call(client, target, "GetCustomer", withToken({ customerCode: config.customerCode }));
  out.customerRead = read.GetCustomerResult.Result && read.GetCustomerResult.Result.Name;

  const invoice = (reference, taxRate) => ({
    CustomerCode: config.customerCode,
    InvoiceDate: "2026-11-02T00:00:00",
    ExternalReference: reference,
    Description: "Posted from Node",
    Lines: {
      BatchSalesInvoiceLine: [
        { GLAccountCode: "4000", TaxCode: "T1", Description: "Widgets", NetAmount: "100.00", TaxRate: taxRate, TaxAmount: "20.00" },
      ],
    },
    ExchangeRate: "1",
  });
  const posted = await call(client, target, "CreateBatchSalesInvoiceGetBackTransactionID",
    withToken({ inv: invoice(config.reference, 0.2) }));
  out.invoice = { status: posted.CreateBatchSalesInvoiceGetBackTransactionIDResult.Status, transactionID: posted.transactionID };

  const found = await call(client, target, "GetTransactionsByExternalReference", withToken({
    query: { ExternalReference: config.reference, FromDate: "2026-01-01T00:00:00", ToDate: "2026-12-31T00:00:00" },
  }));
  const rows = (found.GetTransactionsByExternalReferenceResult.Result || {}).WSTransactionSummary || [];
  out.lookup = rows.map((row) => ({ transactionID: row.TransactionID, amount: row.ControlAmount }));

  const refused = await call(client, target, "CreateBatchSalesInvoiceGetBackTransactionID",
    withToken({ inv: invoice(`${config.reference}-RATE`, 20) }));
  const status = refused.CreateBatchSalesInvoiceGetBackTransactionIDResult;
  out.refusal = { status: status.Status, errorCode: status.ErrorCode, transactionID: refused.transactionID };

  const fault = await call(client, target, "GetCustomersStatement", withToken({
    upTo: "yesterday", customerCodes: { string: [config.customerCode] }, showZeros: false,
  }));
  out.fault = fault.fault ? { httpStatus: fault.status, text: JSON.stringify(fault.fault) } : null;

  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
