"""Make sure every customer of the run exists in AccountsIQ before any invoice is sent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.codes import ErrorCode, invalid
from aiq_flows.domain.customer_codes import CodeClaim, code_collisions
from aiq_flows.domain.customer_details import changed_details, details_to_send
from aiq_flows.domain.outcomes import Outcome, SaleOutcome, outcome_for
from aiq_flows.domain.sales import CustomerDetails, Sale
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError, AiqError, AiqUnknownOutcome
from aiq_flows.gateway.models import BatchSalesInvoice, Customer
from aiq_flows.secrets import redact
from blocks.aiq import AiqConnection
from blocks.store import StateStore


@dataclass
class CustomerResolution:
    accounts: dict[str, Customer] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    failed: dict[str, AiqBusinessError] = field(default_factory=dict)
    # AIQ's batch invoice template per customer (its currency, rate, terms), read once per run.
    templates: dict[str, BatchSalesInvoice] = field(default_factory=dict)
    # Dry run: customers that would be created (their accounts above are AIQ's defaults, unsaved).
    would_create: list[str] = field(default_factory=list)
    # Customers AIQ could not be asked about this time (an outage): their sales wait for the next run.
    unavailable: dict[str, str] = field(default_factory=dict)
    # Which CRM customer each AIQ code belongs to, as checked so far in this run.
    owners: dict[str, str] = field(default_factory=dict)

    def missing(self, sales: list[Sale]) -> bool:
        """Whether some sale's customer is not resolved yet (or was unavailable last time)."""
        return any(
            sale.customer_code not in self.accounts or sale.customer_code in self.unavailable
            for sale in sales
            if sale.customer_code not in self.failed
        )

    def without_planned(self) -> CustomerResolution:
        """What is real in AIQ: the would-be customers forgotten, to be created for real."""
        accounts = {code: a for code, a in self.accounts.items() if code not in self.would_create}
        return CustomerResolution(
            accounts, list(self.created), dict(self.failed), dict(self.templates), owners=dict(self.owners)
        )

    def split(self, sales: list[Sale]) -> tuple[list[Sale], list[SaleOutcome]]:
        """Sales whose customer is ready, and outcomes for those whose customer AIQ refused."""
        ready: list[Sale] = []
        refused: list[SaleOutcome] = []
        for sale in sales:
            outage = self.unavailable.get(sale.customer_code)
            if outage is not None:
                refused.append(
                    outcome_for(
                        sale,
                        Outcome.FAILED,
                        error_code=ErrorCode.TRANSIENT,
                        reason=f"customer {sale.customer_code} could not be checked in AIQ: {outage}; "
                        "retried next run",
                        retryable=True,
                    )
                )
                continue
            error = self.failed.get(sale.customer_code)
            if error is None:
                ready.append(sale)
                continue
            refused.append(
                outcome_for(
                    sale,
                    Outcome.FAILED,
                    error_code=error.error_code,
                    reason=f"customer {sale.customer_code} could not be created in AIQ: "
                    f"{error.error_code}: {error.error_message}",
                )
            )
        return ready, refused


@dataclass(frozen=True)
class CodeCheck:
    sales: list[Sale]  # sales whose customer may use its AIQ code
    quarantined: list[SaleOutcome]  # sales of customers whose code another CRM customer has
    owners: dict[str, str]  # {code: CRM customer key} as the store now records them


def _claims(sales: list[Sale]) -> set[CodeClaim]:
    return {CodeClaim(s.customer_code, s.customer.key, s.customer.derived_code) for s in sales}


def needs_code_check(sales: list[Sale], resolution: CustomerResolution) -> bool:
    """Whether a page has a customer whose code this run has not checked yet."""
    return any(resolution.owners.get(claim.code) != claim.key for claim in _claims(sales))


@task(name="check-customer-codes", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def check_customer_codes(
    state: StateStore, entity: str, sales: list[Sale], dry_run: bool = False
) -> CodeCheck:
    """Two CRM customers are never merged into one AIQ account: each AIQ code belongs to the first
    CRM customer synced on it (recorded in the store), and the sales of any other customer whose
    key normalises to the same code are quarantined, naming both (`code_collisions`). A dry run
    records nothing."""
    claims = _claims(sales)
    store = state.store()
    try:
        if not dry_run:
            undecided = code_collisions(claims, {})  # keys sharing a code nobody owns yet
            store.claim_codes(
                entity, {claim.code: claim.key for claim in claims if claim.key not in undecided}
            )
        owners = store.code_owners(entity, {claim.code for claim in claims})
    finally:
        store.dispose()
    refused = code_collisions(claims, owners)
    ok, quarantined = [], []
    for sale in sales:
        why = refused.get(sale.customer.key)
        if why is None:
            ok.append(sale)
            continue
        quarantined.append(
            outcome_for(
                sale,
                Outcome.QUARANTINED,
                error_code=invalid("customer.key"),
                reason=f"sale {sale.reference!r} (id {sale.sale_id}): customer.key: {why}",
            )
        )
    if refused:
        logger = get_run_logger()
        for key, why in sorted(refused.items()):
            logger.warning("Customer %r not synced: %s", key, why)
    return CodeCheck(ok, quarantined, owners)


def _with_details(customer: Customer, details: CustomerDetails) -> Customer:
    """AIQ's record with the CRM's details on it; what the CRM leaves empty stays as AIQ has it."""
    return customer.model_copy(update=details_to_send(details))


def _new_customer(gateway: AiqGateway, details: CustomerDetails) -> Customer:
    customer = gateway.new_customer_from_defaults()
    customer.Code = details.aiq_code
    return _with_details(customer, details)


def update_customer_details(gateway: AiqGateway, customer: Customer, details: CustomerDetails) -> Customer:
    """Bring an AIQ customer in step with the CRM. AIQ wants the RowVersionNumber it last gave:
    a stale one is refused as Conflicted, and the customer is read again and updated once more."""
    for attempt in range(2):
        try:
            gateway.update_customer(_with_details(customer, details), create=False)
            break
        except AiqBusinessError as error:
            if error.status != "Conflicted" or attempt:
                raise
            fresh = gateway.get_customer(details.aiq_code)
            if fresh is None:
                raise
            customer = fresh
    updated = gateway.get_customer(details.aiq_code)
    return updated or customer


def ensure_customer(gateway: AiqGateway, details: CustomerDetails) -> tuple[Customer, bool]:
    """The AIQ customer for these CRM details, created from AIQ's defaults when missing.
    Returns (customer, created). Safe under concurrency: a create that loses the race is refused
    as Conflicted or already in use, and the customer is read again."""
    existing = gateway.get_customer(details.aiq_code)
    if existing is not None:
        if changed_details(existing.model_dump(), details):
            existing = update_customer_details(gateway, existing, details)
        return existing, False
    try:
        gateway.update_customer(_new_customer(gateway, details), create=True)
    except AiqUnknownOutcome:
        pass  # the answer was lost: whether AIQ made it is read just below
    except AiqBusinessError as error:
        if error.status != "Conflicted" and error.error_code != "ACCOUNT_CODE_ALREADY_IN_USE":
            raise
    created = gateway.get_customer(details.aiq_code)
    if created is None:
        raise AiqBusinessError(
            "UpdateCustomer",
            "Failure",
            "CUSTOMER_CODE_DOES_NOT_EXIST",
            f"customer {details.aiq_code} is missing right after creation",
        )
    return created, True


CUSTOMER_THREADS = 8


@dataclass(frozen=True)
class _Ready:
    customer: Customer
    template: BatchSalesInvoice  # AIQ's batch invoice for this customer (its currency, terms)
    created: bool


def _resolve(gateway: AiqGateway, code: str, details: CustomerDetails) -> _Ready | Exception:
    """One customer made ready in AIQ, or what stopped it."""
    try:
        customer, created = ensure_customer(gateway, details)
        return _Ready(customer, gateway.new_batch_sales_invoice(code), created)
    except Exception as problem:  # one customer's trouble holds its own sales, never the run's
        return problem


@task(name="ensure-customers-in-aiq", cache_policy=NONE)
def ensure_customers(
    aiq: AiqConnection, sales: list[Sale], known: CustomerResolution | None = None, dry_run: bool = False
) -> CustomerResolution:
    """`known`: customers an earlier page of the same run resolved (not asked again). A dry run
    only reads: a missing customer is listed in `would_create`, shown as AIQ's defaults."""
    gateway = aiq.gateway()
    logger = get_run_logger()
    resolution = known or CustomerResolution()
    unique = {
        sale.customer_code: sale.customer
        for sale in sales
        if sale.customer_code not in resolution.accounts and sale.customer_code not in resolution.failed
    }
    if dry_run:
        for code, details in sorted(unique.items()):
            existing = gateway.get_customer(code)
            if existing is None:
                resolution.accounts[code] = _new_customer(gateway, details)
                resolution.would_create.append(code)
            else:
                resolution.accounts[code] = existing
                resolution.templates[code] = gateway.new_batch_sales_invoice(code)
    else:
        # Customers are independent of each other: several at once (each a few AIQ round trips).
        with ThreadPoolExecutor(max_workers=CUSTOMER_THREADS) as pool:
            answers = dict(
                zip(
                    sorted(unique),
                    pool.map(lambda item: _resolve(gateway, *item), sorted(unique.items())),
                    strict=True,
                )
            )
        for code, answer in answers.items():
            if isinstance(answer, _Ready):
                resolution.unavailable.pop(code, None)
                resolution.accounts[code] = answer.customer
                resolution.templates[code] = answer.template
                if answer.created:
                    resolution.created.append(code)
            elif isinstance(answer, AiqBusinessError):
                resolution.failed[code] = answer
                logger.warning(
                    "AIQ refused customer %s: %s %s", code, answer.error_code, answer.error_message
                )
            else:
                kind = "" if isinstance(answer, AiqError) else f"{type(answer).__name__}: "
                resolution.unavailable[code] = redact(f"{kind}{answer}")[:300]
                logger.warning("AIQ unavailable for customer %s: %s", code, answer)
    logger.info(
        "Customers: %d in the run, %d created in AIQ, %d refused",
        len(unique),
        len(resolution.created),
        len(resolution.failed),
    )
    return resolution
