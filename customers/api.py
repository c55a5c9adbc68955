"""The customers REST API (web process): the seed's /v1/customers routes.

Refusals and outages raised by the services reach the client through
`coffeeshop.web.api_errors`, which answers them with their status and words."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coffeeshop.web.schema import error_responses
from coffeeshop.web.serializers import StrictSerializer, StringField
from customers import services
from customers.errors import CustomerNotFound, CustomerRefusal
from customers.selectors import customer_get, customer_list_by_ids
from customers.serializers import (
    REQUEST_ID_MAX_LENGTH,
    CustomerInputSerializer,
    CustomerOutputSerializer,
)
from customers.validators import validate_no_control_characters

BATCH_MAX_IDS = 100
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100


class CustomerEnvelopeSerializer(serializers.Serializer):
    customer = CustomerOutputSerializer()


class SignupVerificationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["pending", "verified", "failed", "expired", "cancelled", "undeliverable"],
        help_text="`pending` while the customer can enter a code; `undeliverable` when the "
        "number can never get a text (see `end_reason`).",
    )
    code_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the texted code stops working; null while on its way."
    )
    end_reason = serializers.CharField(
        allow_blank=True, help_text="Why an undeliverable run ended, e.g. `not_mobile`."
    )


@extend_schema_serializer(component_name="CustomerSignup")
class SignupEnvelopeSerializer(CustomerEnvelopeSerializer):
    verification = SignupVerificationSerializer(
        allow_null=True, help_text="The verification the signup started; its code is sent."
    )


class CustomerCreateApi(APIView):
    """Sign a customer up and start their phone verification."""

    throttle_scope = "signup"

    @extend_schema_serializer(component_name="CustomerCreate")
    class InputSerializer(StrictSerializer):
        """A signup: the customer, and optionally an idempotency key."""

        customer = CustomerInputSerializer()
        request_id = StringField(
            max_length=REQUEST_ID_MAX_LENGTH,
            required=False,
            validators=[validate_no_control_characters],
            help_text="Idempotency key: the same request again returns the same customer.",
        )

    @extend_schema(
        operation_id="customers_create",
        tags=["customers"],
        summary="Sign a customer up and text them a code",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(
                SignupEnvelopeSerializer,
                description="Signed up; answered once the first code is sent.",
            ),
            200: OpenApiResponse(
                SignupEnvelopeSerializer,
                description="The same request_id and payload again: the customer it created.",
            ),
            **error_responses(
                400,
                409,
                413,
                415,
                429,
                503,
                e409=f"`{CustomerRefusal.REQUEST_ID_CONFLICT}`: the request_id came with another "
                f"payload; `{CustomerRefusal.ID_TAKEN}`: a customer has this id.",
                e429="`throttled`: too many signups from this address; `phone_rate_limited`: "
                "too many verifications for this number. Wait `Retry-After` seconds.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fields = data["customer"]
        signup = services.customer_sign_up(
            first_name=fields["first_name"],
            last_name=fields["last_name"],
            email=fields["email"],
            phone_number=fields["phone_number"],
            request_id=data.get("request_id"),
            customer_id=fields.get("id"),
        )
        view = signup.verification
        return Response(
            {
                "customer": CustomerOutputSerializer(signup.customer).data,
                "verification": view
                and {
                    "status": view.state.value,
                    "code_expires_at": view.code_expires_at,
                    "end_reason": view.end_reason,
                },
            },
            status=status.HTTP_201_CREATED if signup.created else status.HTTP_200_OK,
        )


class CustomerDetailApi(APIView):
    """One customer."""

    @extend_schema(
        operation_id="customers_get",
        tags=["customers"],
        summary="Get one customer",
        responses={
            200: CustomerEnvelopeSerializer,
            **error_responses(404, e404=CustomerNotFound.message),
        },
    )
    def get(self, request: Request, customer_id) -> Response:
        customer = customer_get(customer_id=customer_id)
        return Response({"customer": CustomerOutputSerializer(customer).data})


class CustomerPageSerializer(serializers.Serializer):
    customers = CustomerOutputSerializer(many=True, help_text="Oldest first; unknown ids left out.")
    next = serializers.BooleanField(help_text="Whether the next page_index has more.")


class CustomerBatchGetApi(APIView):
    """Several customers by id, a page at a time."""

    class FilterSerializer(serializers.Serializer):
        customer_ids = serializers.ListField(
            child=serializers.UUIDField(),
            min_length=1,
            max_length=BATCH_MAX_IDS,
            error_messages={
                "min_length": "Name at least one customer id.",
                "max_length": f"Name at most {BATCH_MAX_IDS} customer ids.",
            },
        )
        page_size = serializers.IntegerField(
            min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE_DEFAULT
        )
        page_index = serializers.IntegerField(min_value=0, max_value=BATCH_MAX_IDS, default=0)

    @extend_schema(
        operation_id="customers_batch_get",
        tags=["customers"],
        summary="Get several customers by id",
        parameters=[
            OpenApiParameter(
                "customer_ids",
                {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid"},
                    "minItems": 1,
                    "maxItems": BATCH_MAX_IDS,
                },
                required=True,
                explode=True,
                description=f"1 to {BATCH_MAX_IDS} ids: repeat the parameter, or separate "
                "ids with commas.",
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX},
                description=f"{PAGE_SIZE_DEFAULT} by default.",
            ),
            OpenApiParameter(
                "page_index",
                {"type": "integer", "minimum": 0, "maximum": BATCH_MAX_IDS},
                description="From 0, the default.",
            ),
        ],
        responses={200: CustomerPageSerializer, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        ids: list[str] = []
        for value in request.query_params.getlist("customer_ids"):
            ids.extend(part.strip() for part in value.split(",") if part.strip())
        params = {
            "customer_ids": ids,
            **{
                key: request.query_params[key]
                for key in ("page_size", "page_index")
                if key in request.query_params
            },
        }
        serializer = self.FilterSerializer(data=params)
        serializer.is_valid(raise_exception=True)
        customers, more = customer_list_by_ids(**serializer.validated_data)
        return Response(
            {"customers": CustomerOutputSerializer(customers, many=True).data, "next": more}
        )
