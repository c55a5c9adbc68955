"""The customers REST API: the seed's /v1/customers routes."""

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coffeeshop.api_errors import Conflict
from customers import services
from customers.models import Customer
from customers.selectors import customer_list_by_ids
from customers.serializers import (
    REQUEST_ID_MAX_LENGTH,
    CustomerInputSerializer,
    CustomerOutputSerializer,
)

BATCH_MAX_IDS = 100
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100


class CustomerCreateApi(APIView):
    """Sign a customer up and start their phone verification."""

    class InputSerializer(serializers.Serializer):
        customer = CustomerInputSerializer()
        request_id = serializers.CharField(
            max_length=REQUEST_ID_MAX_LENGTH,
            required=False,
            validators=[],
            help_text="Idempotency key: the same request again returns the same customer.",
        )

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fields = data["customer"]
        try:
            customer, created = services.customer_sign_up(
                first_name=fields["first_name"],
                last_name=fields["last_name"],
                email=fields["email"],
                phone_number=fields["phone_number"],
                request_id=data.get("request_id"),
                customer_id=fields.get("id"),
            )
        except services.RequestIdConflict as exc:
            raise Conflict(
                "This request_id was already used with a different customer.",
                code="request_id_conflict",
            ) from exc
        except services.CustomerIdTaken as exc:
            raise Conflict("A customer with this id already exists.", code="id_taken") from exc
        return Response(
            {"customer": CustomerOutputSerializer(customer).data},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class CustomerDetailApi(APIView):
    """One customer."""

    def get(self, request: Request, customer_id) -> Response:
        customer = get_object_or_404(Customer, pk=customer_id)
        return Response({"customer": CustomerOutputSerializer(customer).data})


class CustomerBatchGetApi(APIView):
    """Several customers by id, a page at a time."""

    class FilterSerializer(serializers.Serializer):
        customer_ids = serializers.ListField(
            child=serializers.UUIDField(), min_length=1, max_length=BATCH_MAX_IDS
        )
        page_size = serializers.IntegerField(
            min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE_DEFAULT
        )
        page_index = serializers.IntegerField(min_value=0, default=0)

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
